import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { definePlugin, type GantryPlugin, type Trainer, type TrainerOptions } from '@gantry/core';
import { captureSteps, useBackend, type StepCaptureStats } from '@gantry/engine';
import { relativeError } from '../../engine/test/kernels-reference.js';
import { wganGpTrainer } from './reference-trainer.js';

const required = process.env.GANTRY_REQUIRE_NATIVE === '1';
const native = await useBackend('tensorflow', { quiet: true, threads: 1 }).then(
  () => null,
  (err: Error) => err.message,
);
if (native != null && required) throw new Error(`GANTRY_REQUIRE_NATIVE=1 but ${native}`);

/** The reference WGAN-GP step, 5 steps. SGD: a weight moves by lr × its gradient, so the weights compare the
 * gradients (Adam moves a weight by ±lr whatever the size of its gradient). */
const wganGpSgd = (extra: Partial<TrainerOptions> = {}, plugins: GantryPlugin[] = []) =>
  wganGpTrainer({ steps: 5, optimizers: { generator: tf.train.sgd(0.01), discriminator: tf.train.sgd(0.01) }, ...extra }, plugins);

interface Run {
  losses: number[][];
  weights: Float32Array[];
  tensors: number[];
  /** TensorFlow's tensors (the addon's, which tfjs does not count) and the capture's id translations after each step. */
  nativeTensors: number[];
  /** Tensors alive after training that were not before: the models' weights and the optimizers' state. */
  left: number;
  stats: StepCaptureStats;
}

/**
 * Trains `make()` to the end, eagerly or with its steps captured; per-step losses, final weights, tensor counts. The
 * eager run has a capture that never records: both then use tfjs's own Adam (a graph cannot share the native Adam's
 * TensorFlow resource variables), so what differs is only eager ops against graphs.
 */
async function train(
  make: (extra: Partial<TrainerOptions>) => Trainer,
  captured: boolean,
  options: { warn?: (line: string) => void; resumeFrom?: string; checkpoint?: string } = {},
): Promise<Run> {
  const capture = captureSteps({ warmup: captured ? 2 : Number.POSITIVE_INFINITY, warn: options.warn });
  const before = tf.memory().numTensors;
  const t = make({ stepRunner: capture.run, ...(options.checkpoint ? { checkpoint: { dir: options.checkpoint, every: 1000 } } : {}) });
  if (options.resumeFrom) await t.restore(options.resumeFrom);
  const losses: number[][] = [];
  const tensors: number[] = [];
  const nativeTensors: number[] = [];
  t.on('step:end', ({ scalars }) => {
    losses.push([scalars.d_loss, scalars.g_loss]);
    tensors.push(tf.memory().numTensors);
    nativeTensors.push(capture.nativeTensors + capture.translations);
  });
  try {
    await t.train();
    const weights = [t.generator, t.discriminator].map((m) => Float32Array.from(m.getWeights().flatMap((x) => Array.from(x.dataSync()))));
    return { losses, weights, tensors, stats: { ...capture.stats }, nativeTensors, left: tf.memory().numTensors - before };
  } finally {
    capture.dispose();
    t.generator.dispose();
    t.discriminator.dispose();
    t.optimizers.generator.dispose();
    t.optimizers.discriminator.dispose();
  }
}

/**
 * Graph steps against eager steps of the same training. They agree to float32 rounding, but not bit for bit:
 * TensorFlow's graph optimizer fuses conv + bias + activation (one rounding fewer), and a pre-activation within
 * rounding of 0 can then flip its leaky-ReLU mask, which moves that unit's gradient by (1 − α)·dy. Measured over these
 * 5 steps: losses 6.3e-8, weights 1.4e-7 apart (before the engine's fused batchnorm, one flip made it 3.8e-4 / 1.3e-3;
 * the same graph steps then matched wasm to 6e-7). A miswired graph (a stale weight, a swapped input) is off by 1e-2
 * or more.
 */
function expectSameTraining(graph: Pick<Run, 'losses' | 'weights'>, eager: Pick<Run, 'losses' | 'weights'>): void {
  expect(graph.losses).toHaveLength(eager.losses.length);
  expect(relativeError(graph.losses.flat(), eager.losses.flat())).toBeLessThanOrEqual(2e-3);
  graph.weights.forEach((w, i) => expect(relativeError(w, eager.weights[i]), i === 0 ? 'generator' : 'discriminator').toBeLessThanOrEqual(5e-3));
}

const fiveSteps = (plugins: GantryPlugin[] = []) => (extra: Partial<TrainerOptions>) => wganGpSgd(extra, plugins);

describe.skipIf(native != null)('captureSteps: training steps as TensorFlow graphs', () => {
  it('WGAN-GP steps (a second-order gradient) run as one graph each train as eager steps do, leak-free', async () => {
    const eager = await train(fiveSteps(), false);
    const graph = await train(fiveSteps(), true);
    expectSameTraining(graph, eager);
    // Steps 1-2 eager, 3 recorded (its values from the graph too), 4-5 replayed: one graph run each.
    expect(graph.stats).toEqual({ recorded: 1, replayed: 2, diverged: 0, graphs: 1, runs: 3 });
    expect(new Set(graph.tensors.slice(1)).size).toBe(1);
    expect(graph.left).toBe(eager.left);
    expect(new Set(graph.nativeTensors.slice(2)).size, graph.nativeTensors.join()).toBe(1);
  });

  it('resumes bit for bit: a resumed run records its first step and computes what the uninterrupted run replays', async () => {
    const full = await train((extra) => wganGpSgd({ steps: 6, ...extra }), true);
    for (const stop of [2, 4]) {
      const dir = await mkdtemp(join(tmpdir(), 'gantry-graph-resume-'));
      await train((extra) => wganGpSgd({ steps: stop, ...extra }), true, { checkpoint: dir });
      const resumed = await train((extra) => wganGpSgd({ steps: 6, ...extra }), true, { resumeFrom: dir });
      expect(resumed.losses, `resumed after step ${stop}`).toEqual(full.losses.slice(stop));
      expect(resumed.weights).toEqual(full.weights);
    }
  });

  it('a value read part way through a step runs the ops so far as a graph, the rest as a second one', async () => {
    const sums: number[][] = [[], []];
    let run = 0;
    const reader = () =>
      definePlugin({
        name: 'reads-d',
        hooks: {
          beforePhase: (ctx) => {
            if (ctx.phase !== 'G') return;
            // The critic's weights just updated: pending in a replayed step, so this read runs them first.
            sums[run]!.push(tf.tidy(() => tf.sum(ctx.trainer.discriminator.getWeights()[0]!).dataSync()[0]!));
          },
        },
      });
    const eager = await train(fiveSteps([reader()]), false);
    run = 1;
    const graph = await train(fiveSteps([reader()]), true);
    expectSameTraining(graph, eager);
    expect(relativeError(sums[1]!, sums[0]!)).toBeLessThanOrEqual(1e-3);
    expect(graph.stats).toEqual({ recorded: 1, replayed: 2, diverged: 0, graphs: 2, runs: 6 });
  });

  it('a step whose ops differ from the recording finishes as a graph of its own and the next step is recorded anew', async () => {
    // An extra op at the start of step 4 only (a schedule switching something on, an evaluation).
    const oddStep = () =>
      definePlugin({
        name: 'odd-step',
        hooks: {
          beforeStep: (ctx) => {
            if (ctx.step === 4) tf.tidy(() => tf.sum(ctx.trainer.generator.getWeights()[0]!).dataSync());
          },
        },
      });
    const eager = await train(fiveSteps([oddStep()]), false);
    const graph = await train(fiveSteps([oddStep()]), true);
    expectSameTraining(graph, eager);
    // Step 3 recorded; 4 diverges at its first op, so the rest of it is recorded (not kept: not a whole step) and
    // runs as two graphs (the extra sum, which the hook reads, then the rest); 5 recorded anew.
    expect(graph.stats).toEqual({ recorded: 2, replayed: 0, diverged: 1, graphs: 4, runs: 4 });
    expect(new Set(graph.tensors.slice(1)).size).toBe(1);
    expect(graph.left).toBe(eager.left);
  });

  it('an op that keeps TensorFlow state turns capturing off with one line; training goes on eagerly, unchanged', async () => {
    type RawBinding = { executeOp(...args: unknown[]): { id: number }[]; deleteTensor(id: number): void; TF_ATTR_TYPE: number; TF_ATTR_STRING: number; TF_ATTR_SHAPE: number; TF_FLOAT: number };
    // A resource variable made and freed inside every step: a graph session cannot share the eager context's state.
    const resourceUser = () =>
      definePlugin({
        name: 'resource-user',
        hooks: {
          beforeStep: () => {
            const b = (tf.backend() as unknown as { binding: RawBinding }).binding;
            const attrs = [
              { name: 'container', type: b.TF_ATTR_STRING, value: '' },
              { name: 'shared_name', type: b.TF_ATTR_STRING, value: 'cd2c89b7-88b7-44c8-ad83-06c2a9158347' },
              { name: 'dtype', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
              { name: 'shape', type: b.TF_ATTR_SHAPE, value: [2] },
            ];
            b.deleteTensor(b.executeOp('VarHandleOp', attrs, [], 1)[0]!.id);
          },
        },
      });
    const lines: string[] = [];
    const eager = await train(fiveSteps([resourceUser()]), false);
    const graph = await train(fiveSteps([resourceUser()]), true, { warn: (line) => lines.push(line) });
    // Both ran every step eagerly: the same ops, bit for bit.
    expect(graph.losses).toEqual(eager.losses);
    expect(lines).toEqual(['graph steps off (training continues with eager steps): VarHandleOp keeps state in TensorFlow, which a graph cannot share']);
    expect(graph.stats).toMatchObject({ recorded: 0, replayed: 0, graphs: 0, runs: 0 });
    expect(graph.left).toBe(eager.left);
  });

  it('ops that change every step turn capturing off after three diverging steps in a row, with one line', async () => {
    // A leaky ReLU whose α (an attribute of the TensorFlow op) moves every step.
    const moving = () =>
      definePlugin({
        name: 'moving-alpha',
        hooks: { beforeStep: (ctx) => void tf.tidy(() => tf.leakyRelu(ctx.trainer.generator.getWeights()[0]!, 0.1 + ctx.step / 100)) },
      });
    const lines: string[] = [];
    const eager = await train((extra) => wganGpSgd({ steps: 9, ...extra }, [moving()]), false);
    const graph = await train((extra) => wganGpSgd({ steps: 9, ...extra }, [moving()]), true, { warn: (line) => lines.push(line) });
    expectSameTraining(graph, eager);
    // Steps 3, 5, 7 recorded; 4, 6, 8 diverge at their first op; 9 eager.
    expect(graph.stats).toMatchObject({ recorded: 3, replayed: 0, diverged: 3 });
    expect(lines).toEqual(["graph steps off (training continues with eager steps): the step's ops changed in 3 steps in a row"]);
    expect(graph.left).toBe(eager.left);
  });

  it('a type attribute that eager execution infers (ExpandDims has no T from tfjs-node) is written into the graph', async () => {
    const expands = () =>
      definePlugin({
        name: 'expands',
        hooks: { lossTerms: (ctx) => tf.mul(tf.sum(tf.expandDims(ctx.fakeLogits, 0)), 1e-3) as tf.Scalar },
      });
    const eager = await train(fiveSteps([expands()]), false);
    const graph = await train(fiveSteps([expands()]), true);
    expectSameTraining(graph, eager);
    expect(graph.stats).toEqual({ recorded: 1, replayed: 2, diverged: 0, graphs: 1, runs: 3 });
  });

  it("a replayed step's small uploads that equal the recorded step's reuse its tensors; changed or still held ones are uploaded anew", async () => {
    type Binding = { createTensor(...args: unknown[]): number };
    const backend = tf.backend() as unknown as { binding: Binding };
    const addon = backend.binding;
    let uploads = 0;
    // Counts what reaches the addon (installed before the capture, which then calls it).
    backend.binding = Object.create(addon, { createTensor: { value: (...args: unknown[]) => (uploads++, addon.createTensor(...args)) } }) as Binding;
    const w = tf.tensor1d([1, 2, 3]);
    const capture = captureSteps();
    const before = tf.memory().numTensors;
    const perStep: number[] = [];
    const values: number[][] = [];
    let held: tf.Tensor | undefined;
    try {
      for (let n = 1; n <= 6; n++) {
        const start = uploads;
        values.push(
          await capture.run(() => {
            // 0.5 every step; n changes every step; the 2 made in step 4 is held into step 5, whose 2 (same place, same
            // value) must then be a tensor of its own.
            const two = tf.scalar(2);
            const y = tf.tidy(() => tf.mul(tf.add(tf.mul(w, two), tf.scalar(0.5)), tf.scalar(n)));
            if (n === 4) held = two;
            else two.dispose();
            const out = Array.from(y.dataSync());
            y.dispose();
            return out;
          }, n),
        );
        perStep.push(uploads - start);
        if (n === 5) held!.dispose();
      }
      expect(values).toEqual([1, 2, 3, 4, 5, 6].map((n) => [1, 2, 3].map((x) => (2 * x + 0.5) * n)));
      expect(capture.stats).toMatchObject({ recorded: 1, replayed: 3, diverged: 0 });
      // Eager and recorded steps upload 2, 0.5 and n (step 1 also w: tfjs uploads at first use); replayed ones only n,
      // and step 5 its own 2 as well.
      expect(perStep).toEqual([4, 3, 3, 1, 2, 1]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      capture.dispose();
      backend.binding = addon;
      w.dispose();
    }
  });
});
