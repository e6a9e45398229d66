import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GantryError, NonFiniteLossError, PluginError } from '../src/errors.js';
import { definePlugin } from '../src/plugin.js';
import { Rng } from '../src/random.js';
import { Trainer, type TrainerOptions } from '../src/trainer.js';
import { lossTrace, pointSource, pointTrainer, tinyModels, useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

const tmp = () => mkdtemp(join(tmpdir(), 'gantry-core-'));

const trainer = (extra: Partial<TrainerOptions> = {}, seed = 1) => pointTrainer({ steps: 10, ...extra }, seed);

describe('Trainer', () => {
  it('keeps tf.memory().numTensors flat over 100 steps', async () => {
    const t = trainer({ steps: 100, nCritic: 2 });
    const counts: number[] = [];
    t.on('step:end', () => void counts.push(tf.memory().numTensors));
    await t.train();
    expect(counts).toHaveLength(100);
    // After the optimizers created their slots (step 1), nothing may grow.
    expect(new Set(counts.slice(1)).size).toBe(1);
  });

  it('is reproducible: same seed, same losses step for step; another seed differs', async () => {
    const a = await lossTrace(trainer());
    const b = await lossTrace(trainer());
    const c = await lossTrace(trainer({ seed: 8 }));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a[0][0]).toBeGreaterThan(0);
  });

  it('learns: the generated points move from around the origin to the data cluster at (0.5, -0.4)', async () => {
    const target = [0.5, -0.4];
    // Real data: a tight Gaussian cluster (σ 0.05), a pure function of (seed, batch index).
    const cluster = {
      name: 'cluster',
      elementShape: [2],
      *batches({ batchSize, seed, start }: { batchSize: number; seed: number; start: number }) {
        for (let i = start; ; i++) {
          yield { x: tf.tidy(() => tf.add(tf.randomNormal([batchSize, 2], 0, 0.05, 'float32', seed + i), tf.tensor1d(target))) };
        }
      },
    };
    const t = trainer({ data: cluster, steps: 300, optimizers: { generator: tf.train.adam(0.01, 0.5), discriminator: tf.train.adam(0.01, 0.5) } });
    const distanceToTarget = () =>
      tf.tidy(() => {
        const mean = tf.mean(t.generate(t.sampleLatent(256, new Rng(99))), 0);
        return tf.norm(tf.sub(mean, tf.tensor1d(target))).dataSync()[0];
      });
    const before = distanceToTarget();
    await t.train();
    const after = distanceToTarget();
    // The untrained generator's mean sits near the origin (tanh of small values): about |(0.5, -0.4)| = 0.64 away (0.56 measured).
    expect(before).toBeGreaterThan(0.4);
    // 0.56 → 0.094 over 300 steps (seeded, deterministic on cpu).
    expect(after).toBeLessThan(0.15);
  });

  it('resumes exactly: losses after restore equal the uninterrupted run', async () => {
    const full = await lossTrace(trainer({ steps: 10 }));
    const dir = await tmp();
    const first = trainer({ steps: 5, checkpoint: { dir, every: 5 } });
    await first.train();
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe('step-000005');
    const resumed = trainer({ steps: 10 });
    await resumed.restore(dir);
    expect(resumed.step).toBe(5);
    const rest = await lossTrace(resumed);
    expect(rest).toEqual(full.slice(5));
  });

  it('stops cleanly and writes a checkpoint', async () => {
    const dir = await tmp();
    const t = trainer({ steps: 50, checkpoint: { dir } });
    t.on('step:end', ({ step }) => {
      if (step === 3) t.stop();
    });
    const result = await t.train();
    expect(result.reason).toBe('stopped');
    expect(result.steps).toBe(3);
    expect(await readdir(dir)).toContain('step-000003');
  });

  it('a stop asked while a checkpoint loads stops before the first step, writes nothing, and the next train() runs', async () => {
    const dir = await tmp();
    await trainer({ steps: 2, checkpoint: { dir } }).train();
    const resumed = trainer({ steps: 6, checkpoint: { dir } });
    let steps = 0;
    resumed.on('step:end', () => void steps++);
    const restoring = resumed.restore(dir);
    resumed.stop();
    await restoring;
    const result = await resumed.train();
    expect(result).toMatchObject({ reason: 'stopped', steps: 2, lastCheckpoint: join(dir, 'step-000002') });
    expect(steps).toBe(0);
    expect((await readdir(dir)).filter((name) => name.startsWith('step-'))).toEqual(['step-000002']);
    // The request was used up: training again runs to the end.
    expect(await resumed.train()).toMatchObject({ reason: 'completed', steps: 6 });
    expect(steps).toBe(4);
  });

  it('runs hooks in order with schedules and names the plugin when one throws', async () => {
    const calls: string[] = [];
    const plugin = definePlugin({
      name: 'recorder',
      hooks: {
        beforeStep: { handler: ({ step }) => void calls.push(`step${step}`), every: 2 },
        lossTerms: { handler: ({ phase, step }) => void calls.push(`${phase}${step}`), phase: 'G', after: 2 },
      },
    });
    await trainer({ steps: 4, plugins: [plugin] }).train();
    expect(calls).toEqual(['step2', 'G3', 'step4', 'G4']);

    const broken = definePlugin({
      name: 'broken',
      hooks: { afterApply: () => { throw new Error('boom'); } },
    });
    await expect(trainer({ plugins: [broken] }).train()).rejects.toThrow('plugin "broken" failed in hook "afterApply": boom');
    await expect(trainer({ plugins: [broken] }).train()).rejects.toBeInstanceOf(PluginError);
  });

  it('adds loss terms to the phase loss and reports them', async () => {
    const seen: Record<string, number>[] = [];
    // A constant term changes the reported value but not the gradients: losses stay identical.
    const plugin = definePlugin({ name: 'const', hooks: { lossTerms: { handler: () => ({ c: tf.scalar(3) }), phase: 'D' } } });
    const t = trainer({ steps: 2, plugins: [plugin] });
    t.on('step:end', ({ scalars }) => void seen.push(scalars));
    await t.train();
    expect(seen[0]['D/const/c']).toBe(3);
    const plain = await lossTrace(trainer({ steps: 2 }));
    expect(seen.map((s) => [s.d_loss, s.g_loss])).toEqual(plain);
  });

  it('transformGrads can scale gradients (zero gradients freeze the discriminator)', async () => {
    const t = trainer({
      steps: 3,
      plugins: [
        definePlugin({
          name: 'freeze-d',
          hooks: {
            transformGrads: {
              handler: (grads) => Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.zerosLike(g)])),
              phase: 'D',
            },
          },
        }),
      ],
      optimizers: { discriminator: tf.train.sgd(0.1), generator: tf.train.sgd(0.1) },
    });
    const before = t.discriminator.getWeights().map((w) => Array.from(w.dataSync()));
    await t.train();
    const after = t.discriminator.getWeights().map((w) => Array.from(w.dataSync()));
    expect(after).toEqual(before);
  });
});

describe('augment hook', () => {
  it('transforms every batch D sees in both phases, inside the gradient: a constant image stops G learning', async () => {
    const calls: string[] = [];
    const constantImage = definePlugin({
      name: 'constant',
      hooks: {
        augment: (x, ctx) => {
          calls.push(`${ctx.phase}:${x.shape[0]}`);
          // 0·x keeps the tape connected, so a zero gradient reaches G only if the hook is in the gradient path.
          return tf.add(tf.mul(x, 0), 0.25);
        },
      },
    });
    const t = trainer({ steps: 2, plugins: [constantImage], optimizers: { discriminator: tf.train.sgd(0.1), generator: tf.train.sgd(0.1) } });
    const gBefore = t.generator.getWeights().map((w) => Array.from(w.dataSync()));
    const dBefore = t.discriminator.getWeights().map((w) => Array.from(w.dataSync()));
    const probe = tf.fill([1, 2], 0.25);
    const logit = t.discriminator.predict(probe) as tf.Tensor;
    const l = logit.dataSync()[0];
    tf.dispose([probe, logit]);
    const trace = await lossTrace(t);
    // Per step: D(real) and D(fake) in the D phase, D(fake) in the G phase.
    expect(calls).toEqual(['D:16', 'D:16', 'G:16', 'D:16', 'D:16', 'G:16']);
    expect(t.generator.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(gBefore);
    expect(t.discriminator.getWeights().map((w) => Array.from(w.dataSync()))).not.toEqual(dBefore);
    // Step 1: D(real) = D(fake) = l = D(0.25) before any update, so the D loss is softplus(−l) + softplus(l).
    expect(trace[0][0]).toBeCloseTo(Math.log1p(Math.exp(-l)) + Math.log1p(Math.exp(l)), 5);
  });
});

describe('Trainer input errors (one line each)', () => {
  it('rejects unknown options', () => {
    expect(() => trainer({ stepz: 3 } as never)).toThrow('Unknown option "stepz" for Trainer');
  });

  it('rejects a generator/data shape mismatch', async () => {
    const models = tinyModels(1, 4, 3);
    const t = new Trainer({ ...models, data: pointSource(2), steps: 1, batchSize: 4 });
    await expect(t.train()).rejects.toThrow('Shape mismatch: the generator outputs [3] per sample but the real data is [2]');
  });

  it('rejects data outside [-1, 1] before any step', async () => {
    const data = [{ x: tf.tensor2d([[0, 255]]) }];
    const t = new Trainer({ ...tinyModels(), data, steps: 1 });
    await expect(t.train()).rejects.toThrow('Real data must lie in [-1, 1] but batch 1 spans [0, 255] (for 8-bit images use x / 127.5 - 1)');
  });

  it('rejects a conditional model without labels', async () => {
    const z = tfl.input({ shape: [4] });
    const label = tfl.input({ shape: [1] });
    const h = tfl.layers.concatenate().apply([z, label]) as tfl.SymbolicTensor;
    const generator = tfl.model({ inputs: [z, label], outputs: tfl.layers.dense({ units: 2 }).apply(h) as tfl.SymbolicTensor });
    const t = new Trainer({ generator, discriminator: tinyModels().discriminator, data: pointSource(), steps: 1, batchSize: 4 });
    await expect(t.train()).rejects.toThrow('The generator is conditional (2 inputs) but the data has no labels');
  });

  it('stops on a NaN loss, names it, and keeps the last good checkpoint', async () => {
    const dir = await tmp();
    const poison = definePlugin({
      name: 'poison',
      hooks: { lossTerms: { handler: () => tf.scalar(NaN), once: 4, phase: 'G' } },
    });
    const t = trainer({ steps: 10, plugins: [poison], checkpoint: { dir, every: 2 } });
    const error = await t.train().catch((e) => e);
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect(error.message).toBe(`Non-finite loss at step 4: G/poison = NaN. Training stopped; last good checkpoint: ${join(dir, 'step-000002')}`);
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe('step-000002');
  });

  it('GantryError is the base class of all of these', () => {
    expect(new NonFiniteLossError(1, 'x', NaN)).toBeInstanceOf(GantryError);
  });
});
