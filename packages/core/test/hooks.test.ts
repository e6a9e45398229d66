import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { PluginError } from '../src/errors.js';
import { definePlugin, type GantryPlugin } from '../src/plugin.js';
import { Trainer, type TrainerOptions } from '../src/trainer.js';
import { useCpuBackend, pointSource, tinyModels } from '../src/testing.js';

beforeAll(useCpuBackend);

function trainer(plugins: GantryPlugin[], extra: Partial<TrainerOptions> = {}) {
  return new Trainer({ ...tinyModels(1), data: pointSource(), steps: 2, batchSize: 8, seed: 7, plugins, ...extra });
}

/** The error a Trainer constructor raises for `plugin`, or undefined. */
function bindError(plugin: GantryPlugin): PluginError {
  try {
    trainer([plugin]);
  } catch (error) {
    if (error instanceof PluginError) return error;
    throw error;
  }
  throw new Error('the plugin was accepted');
}

const values = (model: { getWeights(): tf.Tensor[] }) => model.getWeights().map((w) => Array.from(w.dataSync()));

describe('plugins are validated when bound (the Trainer constructor)', () => {
  const cases: [string, GantryPlugin, string][] = [
    ['every 0', { name: 'p', hooks: { afterApply: { every: 0, handler: () => undefined } } }, 'plugin "p" failed in hook "afterApply": every must be an integer >= 1, got 0'],
    ['every 1.5', { name: 'p', hooks: { afterApply: { every: 1.5, handler: () => undefined } } }, 'plugin "p" failed in hook "afterApply": every must be an integer >= 1, got 1.5'],
    ['once 0', { name: 'p', hooks: { beforeStep: { once: 0, handler: () => undefined } } }, 'plugin "p" failed in hook "beforeStep": once must be an integer >= 1 (steps count from 1), got 0'],
    ['after -1', { name: 'p', hooks: { beforePhase: { after: -1, handler: () => undefined } } }, 'plugin "p" failed in hook "beforePhase": after must be an integer >= 0, got -1'],
    ['phase X', { name: 'p', hooks: { afterApply: { phase: 'X' as 'D', handler: () => undefined } } }, 'plugin "p" failed in hook "afterApply": phase must be "D" or "G", got X'],
    ['order', { name: 'p', hooks: { afterApply: { order: 'last' as 'post', handler: () => undefined } } }, 'plugin "p" failed in hook "afterApply": order must be "pre" or "post", got last'],
    ['unknown key', { name: 'p', hooks: { afterApply: { evry: 2, handler: () => undefined } as never } }, 'plugin "p" failed in hook "afterApply": unknown key "evry" (known: handler, every, once, after, phase, order)'],
    ['no handler', { name: 'p', hooks: { afterApply: { every: 2 } as never } }, 'plugin "p" failed in hook "afterApply": has no handler function'],
    ['unknown hook', { name: 'p', hooks: { afterStep: () => undefined } as never }, 'plugin "p" failed in hook "afterStep": unknown hook (known: setup, beforeStep, beforePhase, transformBatch, augment, lossTerms, generatorLoss, skipUpdate, transformGrads, afterApply, teardown)'],
    ['async sync hook', { name: 'p', hooks: { lossTerms: (async () => undefined) as never } }, 'plugin "p" failed in hook "lossTerms": is synchronous (it runs inside the step), but the handler is an async function'],
    ['scheduled setup', { name: 'p', hooks: { setup: { every: 2, handler: () => undefined } as never } }, 'plugin "p" failed in hook "setup": runs once per run and takes no schedule (every, once, after, phase)'],
    ['listener every 0', { name: 'p', on: { 'step:end': { every: 0, handler: () => undefined } } }, 'plugin "p" failed in listener "step:end": every must be an integer >= 1, got 0'],
  ];
  it.each(cases)('%s', (_name, plugin, message) => {
    const error = bindError(plugin);
    expect(error.message).toBe(message);
    expect(error.plugin).toBe('p');
  });

  it('a Promise returned from a synchronous hook is a PluginError naming plugin and hook', async () => {
    const t = trainer([{ name: 'sneaky', hooks: { lossTerms: () => Promise.resolve(tf.scalar(1)) as never } }]);
    await expect(t.train()).rejects.toThrow(
      'plugin "sneaky" failed in hook "lossTerms": returned a Promise, but this hook is synchronous (it runs inside the step); do async work in beforeStep or beforePhase',
    );
  });

  it('an empty gradient map from transformGrads is an error (skipUpdate skips)', async () => {
    const t = trainer([{ name: 'empty', hooks: { transformGrads: () => ({}) } }]);
    await expect(t.train()).rejects.toThrow(
      'plugin "empty" failed in hook "transformGrads": returned no gradients; return true from skipUpdate to skip an update',
    );
  });
});

describe('hook order', () => {
  it('pre, unordered, post, whatever the list order; list order within a group', async () => {
    const calls: string[] = [];
    const recorder = (name: string, order?: 'pre' | 'post') =>
      definePlugin({
        name,
        hooks: { afterApply: { phase: 'G', order, handler: () => void calls.push(name) } },
        on: { 'step:end': { order, handler: () => void calls.push(`${name}:event`) } },
      });
    const t = trainer([recorder('late', 'post'), recorder('plain1'), recorder('early', 'pre'), recorder('plain2')], { steps: 1 });
    await t.train();
    expect(calls).toEqual(['early', 'plain1', 'plain2', 'late', 'early:event', 'plain1:event', 'plain2:event', 'late:event']);
  });

  it('each plugin gets its own context: its name, and report files under it', async () => {
    const seen: string[] = [];
    const reporter = (name: string) =>
      definePlugin({
        name,
        hooks: {
          afterApply: {
            phase: 'D',
            handler: (ctx) => {
              seen.push(ctx.plugin);
              tf.tidy(() => ctx.report('x', tf.scalar(name === 'a' ? 1 : 2)));
            },
          },
        },
      });
    const t = trainer([reporter('a'), reporter('b')], { steps: 1 });
    const result = await t.train();
    expect(seen).toEqual(['a', 'b']);
    expect(result.lastScalars['a/x']).toBe(1);
    expect(result.lastScalars['b/x']).toBe(2);
  });
});

describe('explicit hooks', () => {
  it('skipUpdate: a skipped D update leaves the weights and the optimizer step count as they were', async () => {
    const t = trainer([{ name: 'skip', hooks: { skipUpdate: { phase: 'D', handler: () => true } } }], { steps: 3 });
    const before = values(t.discriminator);
    await t.train();
    expect(values(t.discriminator)).toEqual(before);
    const [iterations] = await t.optimizers.discriminator.getWeights();
    expect(iterations.tensor.dataSync()[0]).toBe(0);
    iterations.tensor.dispose();
  });

  it('generatorLoss: replacing the loss by 2x it doubles the first SGD update of G; g_loss stays the base loss', async () => {
    const delta = async (scale?: number) => {
      const plugins: GantryPlugin[] =
        scale === undefined ? [] : [{ name: 'scale', hooks: { generatorLoss: (loss) => tf.mul(loss, scale) as tf.Scalar } }];
      const t = trainer(plugins, {
        steps: 1,
        optimizers: { generator: tf.train.sgd(0.1), discriminator: tf.train.sgd(0.1) },
      });
      const before = values(t.generator);
      const result = await t.train();
      const after = values(t.generator);
      return { result, diff: after.map((w, i) => w.map((v, j) => v - before[i][j])) };
    };
    const plain = await delta();
    const doubled = await delta(2);
    expect(doubled.result.lastScalars.g_loss).toBeCloseTo(plain.result.lastScalars.g_loss, 6);
    expect(doubled.result.lastScalars['G/scale']).toBeCloseTo(2 * plain.result.lastScalars.g_loss, 5);
    const flat = (d: number[][]) => d.flat();
    const a = flat(plain.diff);
    const b = flat(doubled.diff);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(1e-4);
    b.forEach((v, i) => expect(v).toBeCloseTo(2 * a[i], 5));
  });
});

describe('ownership: what hooks return belongs to the core', () => {
  it('checkpoints leak nothing: numTensors flat with a checkpoint every step and a plugin whose save() returns copies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-hooks-'));
    const kept = tf.keep(tf.tensor1d([1, 2, 3]));
    const stateful = definePlugin({
      name: 'stateful',
      state: {
        save: () => ({ json: { n: 1 }, tensors: { v: tf.clone(kept) } }),
        load: () => undefined,
      },
    });
    const t = trainer([stateful], { steps: 12, checkpoint: { dir, every: 1, keep: 2 } });
    const counts: number[] = [];
    t.on('checkpoint', () => void counts.push(tf.memory().numTensors));
    await t.train();
    expect(counts).toHaveLength(12);
    expect(new Set(counts.slice(1)).size).toBe(1);
    kept.dispose();
  });
});
