import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ema } from '../src/index.js';
import { expectFlatTensorCount, tinyTrainer, trainCountingTensors, useCpuBackend, weightValues } from '@gantry/core/testing';

beforeAll(useCpuBackend);

describe('ema', () => {
  it('after n steps the averaged weights equal βⁿ·w₀ + (1 − β)·Σₖ βⁿ⁻ᵏ·wₖ', async () => {
    const beta = 0.8;
    const plugin = ema({ beta });
    const trainer = tinyTrainer([plugin], { steps: 6 });
    const history = [weightValues(trainer.generator)];
    trainer.on('step:end', () => void history.push(weightValues(trainer.generator)));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    const n = history.length - 1;
    expect(n).toBe(6);
    expect(plugin.updates).toBe(6);
    expect(trainer.samplingGenerator).toBe(plugin.model);
    expect(trainer.samplingGenerator).not.toBe(trainer.generator);
    const averaged = weightValues(plugin.model!);
    averaged.forEach((w, i) => {
      w.forEach((value, j) => {
        let expected = beta ** n * history[0][i][j];
        for (let k = 1; k <= n; k++) expected += (1 - beta) * beta ** (n - k) * history[k][i][j];
        expect(value).toBeCloseTo(expected, 6);
      });
    });
    // The weights moved, so the average differs from both ends.
    expect(averaged[0]).not.toEqual(history[n][0]);
  });

  it('rampup: update n uses min(β, 0.5^(1/(rampup·n))), so the copy starts at the first update\'s weights', async () => {
    // β 0.7, rampup 0.5: decays 0, 0.5², 0.5¹, 0.5^(2/3), then capped at 0.7 (0.5^(1/2) = 0.707 > 0.7).
    const decays = [0, 0.25, 0.5, 0.5 ** (2 / 3), 0.7, 0.7];
    const plugin = ema({ beta: 0.7, rampup: 0.5 });
    const trainer = tinyTrainer([plugin], { steps: 6 });
    const history = [weightValues(trainer.generator)];
    trainer.on('step:end', () => void history.push(weightValues(trainer.generator)));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    expect(history).toHaveLength(7);
    const expected = history[0].map((w) => [...w]);
    decays.forEach((b, n) => {
      expected.forEach((w, i) => w.forEach((value, j) => (w[j] = b * value + (1 - b) * history[n + 1][i][j])));
    });
    const averaged = weightValues(plugin.model!);
    averaged.forEach((w, i) => w.forEach((value, j) => expect(value).toBeCloseTo(expected[i][j], 6)));
    // Without the ramp-up the same run keeps 0.7⁶ = 12% of the initial weights.
    expect(averaged[0]).not.toEqual(history[0][0]);
  });

  it('is checkpointed: a resumed run continues with exactly the same average', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-ema-'));
    try {
      const first = ema({ beta: 0.9 });
      const a = tinyTrainer([first], { steps: 3, checkpoint: { dir } });
      await a.train();
      const resumedPlugin = ema({ beta: 0.9 });
      const b = tinyTrainer([resumedPlugin], { steps: 5 });
      await b.restore(dir);
      await b.setup();
      expect(weightValues(b.samplingGenerator)).toEqual(weightValues(first.model!));
      a.totalSteps = 5;
      await a.train();
      await b.train();
      expect(weightValues(resumedPlugin.model!)).toEqual(weightValues(first.model!));
      expect(resumedPlugin.updates).toBe(5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects β outside [0, 1)', () => {
    expect(() => ema({ beta: 1 })).toThrow(/beta/);
    expect(() => ema({ rampup: 0 })).toThrow(/rampup must be > 0, got 0/);
    expect(() => ema({ decay: 0.9 } as never)).toThrow(/Unknown option "decay"/);
  });

  it('generate() uses the averaged copy', async () => {
    const plugin = ema({ beta: 0.5 });
    const trainer = tinyTrainer([plugin], { steps: 2 });
    await trainer.train();
    const z = tf.ones([2, 3]);
    const viaTrainer = trainer.generate(z);
    const viaCopy = plugin.model!.predict(z) as tf.Tensor;
    const viaRaw = trainer.generator.predict(z) as tf.Tensor;
    expect(Array.from(viaTrainer.dataSync())).toEqual(Array.from(viaCopy.dataSync()));
    expect(Array.from(viaTrainer.dataSync())).not.toEqual(Array.from(viaRaw.dataSync()));
    tf.dispose([z, viaTrainer, viaCopy, viaRaw]);
  });
});
