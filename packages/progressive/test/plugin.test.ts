import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, definePlugin, type TrainerOptions } from '@gantry/core';
import { ProgressiveGan, progressive, resetOptimizer } from '../src/index.js';
import '@tensorflow/tfjs-backend-cpu';
import { imageSource, useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const build = () => new ProgressiveGan({ latentDim: 8, channels: 1, resolution: 16, filters: [6, 5, 4], seed: 3 });

function makeTrainer(grow: ReturnType<typeof progressive>, startStep: number, options: Partial<TrainerOptions> = {}) {
  return new Trainer({
    ...grow.modelsForStep(startStep),
    data: imageSource({ side: 14 }),
    steps: 14,
    batchSize: 6,
    seed: 5,
    plugins: [grow],
    ...options,
  });
}

describe('progressive plugin', () => {
  it('grows 4 → 8 → 16 on schedule, fades real images, cuts per-stage batches and keeps memory flat per stage', async () => {
    const grow = progressive(build(), { stableSteps: 2, fadeSteps: 3, batchSize: [6, 4, 4], padTo: 16 });
    expect(grow.totalSteps).toBe(2 + 5 + 5);
    const seen: { step: number; real: number[]; fake: number[]; reals: number }[] = [];
    const probe = definePlugin({
      name: 'probe',
      hooks: {
        lossTerms: { phase: 'D', handler: (ctx) => void seen.push({ step: ctx.step, real: ctx.real.shape, fake: ctx.fake.shape, reals: ctx.real.shape[0] }) },
      },
    });
    const trainer = makeTrainer(grow, 1, { plugins: [grow, probe] });
    const reported: { resolution: number; alpha: number; tensors: number; gIterations: number }[] = [];
    trainer.on('step:end', (e) =>
      void reported.push({
        resolution: e.scalars['progressive/resolution'],
        alpha: e.scalars['progressive/alpha'],
        tensors: tf.memory().numTensors,
        gIterations: trainer.optimizers.generator.iterations,
      }),
    );
    await trainer.train();
    expect(reported.map((r) => r.resolution)).toEqual([4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16]);
    expect(reported.map((r) => Number(r.alpha.toFixed(4)))).toEqual([1, 1, 0.3333, 0.6667, 1, 1, 1, 0.3333, 0.6667, 1, 1, 1, 1, 1]);
    expect(seen.map((s) => s.real)).toEqual(seen.map((s) => s.fake));
    expect(seen.map((s) => s.real[1])).toEqual([4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16]);
    expect(seen.map((s) => s.reals)).toEqual([6, 6, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
    // Optimizers restart with each new model: entering a fade (steps 3, 8) and leaving it (steps 6, 11).
    expect(reported.map((r) => r.gIterations)).toEqual([1, 2, 1, 2, 3, 1, 2, 1, 2, 3, 1, 2, 3, 4]);
    const finalStage = reported.slice(11).map((r) => r.tensors);
    expect(new Set(finalStage).size).toBe(1);
    expect(trainer.generator).toBe(grow.gan.generator(2));
  });

  it('resumes mid-fade from a checkpoint and continues the same run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-progressive-'));
    try {
      const schedule = { stableSteps: 2, fadeSteps: 4, padTo: 16 };
      const growA = progressive(build(), schedule);
      const a = makeTrainer(growA, 1, { steps: 4, checkpoint: { dir } });
      await a.train();
      expect(growA.phaseAt(4)).toEqual({ stage: 1, fading: true, alpha: 0.5 });

      // A second process: same architecture (any seed), models of the checkpoint's step, then restore.
      const ganB = new ProgressiveGan({ latentDim: 8, channels: 1, resolution: 16, filters: [6, 5, 4], seed: 99 });
      const growB = progressive(ganB, schedule);
      const b = makeTrainer(growB, 4, { steps: 9 });
      await b.restore(dir);
      expect(b.step).toBe(4);
      const alphas: number[] = [];
      b.on('step:end', (e) => void alphas.push(e.scalars['progressive/alpha']));
      a.totalSteps = 9;
      await a.train();
      await b.train();
      expect(alphas).toEqual([0.75, 1, 1, 1, 0.25]);
      const wa = growA.gan.allWeights().map((w) => values(w.read()));
      const wb = ganB.allWeights().map((w) => values(w.read()));
      expect(wb.length).toBe(wa.length);
      wb.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(wa[i][j], 5)));
      // Blocks not trained yet (16×16) came from the checkpoint, not from seed 99.
      expect(wb.at(-1)).toEqual(wa.at(-1));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('resetOptimizer clears step count and moments without leaking', async () => {
    const v = tf.variable(tf.ones([3]));
    const adam = tf.train.adam(0.1);
    adam.minimize(() => tf.sum(tf.square(v)) as tf.Scalar, false, [v]);
    const before = tf.memory().numTensors;
    await resetOptimizer(adam);
    expect(adam.iterations).toBe(0);
    const state = await adam.getWeights();
    expect(state.length).toBe(1);
    state[0].tensor.dispose();
    // The two moment variables are gone.
    expect(tf.memory().numTensors).toBe(before - 2);
    adam.minimize(() => tf.sum(tf.square(v)) as tf.Scalar, false, [v]);
    // First Adam step after a reset moves each weight by ≈ lr, as from a fresh optimizer.
    values(v).forEach((x) => expect(x).toBeCloseTo(1 - 0.2, 4));
  });

  it('rejects a pad size other than the final resolution', () => {
    expect(() => progressive(build(), { stableSteps: 1, fadeSteps: 1, padTo: 32 })).toThrow(/final resolution 16/);
  });
});
