import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, unpackScheduled, withSeed, type DataSource, type GantryPlugin, type LossContext } from '@gantry/core';
import { r1 } from '@gantry/loss-wgan';
import { ada, adaStep, diffAugment } from '../src/index.js';
import { expectFlatTensorCount, useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

describe('adaStep: p ← clamp(p + sign(r_t − target)·images/(adaKimg·1000), 0, 1)', () => {
  const options = { target: 0.6, adaKimg: 500 };
  it('moves by batch·interval/500k towards more augmentation when D is overconfident, less otherwise', () => {
    expect(adaStep(0.1, 0.8, 256, options)).toBeCloseTo(0.1 + 256 / 500_000, 15);
    expect(adaStep(0.1, 0.2, 256, options)).toBeCloseTo(0.1 - 256 / 500_000, 15);
    expect(adaStep(0.1, 0.6, 256, options)).toBe(0.1);
    expect(adaStep(0, -1, 256, options)).toBe(0);
    expect(adaStep(0.9999, 1, 256, options)).toBe(1);
    // 0 → 1 takes adaKimg thousand images.
    let p = 0;
    for (let i = 0; i < 500_000 / 64; i++) p = adaStep(p, 1, 64, options);
    expect(p).toBeCloseTo(1, 9);
  });
});

/** Drives the plugin as the trainer would for one step: D-phase lossTerms with given logits, then step:end. */
function step(plugin: GantryPlugin, realLogits: number[]): void {
  const handler = unpackScheduled(plugin.hooks!.lossTerms!).handler as (ctx: LossContext) => void;
  const logits = tf.tensor2d(realLogits, [realLogits.length, 1]);
  const reports: Record<string, number> = {};
  handler({ realLogits: logits, report: (name: string, v: tf.Scalar) => (reports[name] = v.dataSync()[0]) } as never);
  logits.dispose();
  const listener = unpackScheduled(plugin.on!['step:end']!).handler as (payload: unknown) => void;
  listener({ step: 0, scalars: { 'ada/rt': reports.rt, 'ada/p': reports.p } });
}

describe('ada: p adapts every `interval` steps from the mean of r_t over the interval', () => {
  it('step by step', () => {
    const plugin = ada({ interval: 2, adaKimg: 0.1, initialP: 0.5 }); // 100 images move p by 1
    // Step 1: r_t = (1 + 1 + 1 − 1)/4 = 0.5; no update yet.
    step(plugin, [2, 3, 0.5, -1]);
    expect(plugin.p).toBe(0.5);
    // Step 2: r_t = 1 → interval mean 0.75 > 0.6: p += 8/100.
    step(plugin, [1, 1, 1, 1]);
    expect(plugin.p).toBeCloseTo(0.58, 12);
    // Steps 3–4: r_t = 0 and 0.5 → mean 0.25 < 0.6: p −= 8/100.
    step(plugin, [1, -1, 2, -2]);
    step(plugin, [1, 1, 1, -1]);
    expect(plugin.p).toBeCloseTo(0.5, 12);
  });

  it('fixed-p mode never moves; options are checked', () => {
    const plugin = ada({ fixedP: 0.3, interval: 1 });
    for (let i = 0; i < 3; i++) step(plugin, [5, 5]);
    expect(plugin.p).toBe(0.3);
    expect(() => ada({ fixedP: 1.5 })).toThrow(/fixedP must be in \[0, 1\]/);
    expect(() => ada({ transforms: ['blur' as never] })).toThrow(/unknown transform "blur"/);
    expect(() => ada({ interval: 0 })).toThrow(/interval/);
  });
});

/** 4×4 grey images in [−1, 1]: a pure function of (seed, batch index). */
function tinyImages(): DataSource {
  return {
    name: 'tiny-images',
    elementShape: [4, 4, 1],
    *batches({ batchSize, seed, start }) {
      for (let i = start; ; i++) yield { x: tf.tidy(() => tf.tanh(tf.randomNormal([batchSize, 4, 4, 1], 0, 1, 'float32', seed + i))) };
    },
  };
}

function imageTrainer(plugins: GantryPlugin[], steps: number, checkpointDir?: string): Trainer {
  const { generator, discriminator } = withSeed(3, () => ({
    generator: tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [3], units: 16, activation: 'tanh' }), tfl.layers.reshape({ targetShape: [4, 4, 1] })],
    }),
    discriminator: tfl.sequential({
      layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 8 }), tfl.layers.leakyReLU({ alpha: 0.2 }), tfl.layers.dense({ units: 1 })],
    }),
  }));
  return new Trainer({
    generator,
    discriminator,
    data: tinyImages(),
    steps,
    batchSize: 8,
    seed: 9,
    plugins,
    ...(checkpointDir ? { checkpoint: { dir: checkpointDir, every: 3 } } : {}),
  });
}

async function trace(trainer: Trainer) {
  const rows: Record<string, number>[] = [];
  const counts: number[] = [];
  trainer.on('step:end', ({ scalars }) => {
    rows.push(scalars);
    counts.push(tf.memory().numTensors);
  });
  await trainer.train();
  return { rows, counts };
}

describe('in the Trainer', () => {
  const makers: [string, () => GantryPlugin[]][] = [
    ['ada (adapting, with R1 through the augmentation)', () => [ada({ initialP: 0.5, interval: 2, adaKimg: 0.2 }), r1({ gamma: 1 })]],
    ['diffAugment', () => [diffAugment()]],
  ];
  for (const [name, make] of makers) {
    it(`${name}: leak-free, and a resumed run reproduces the uninterrupted one bit for bit`, async () => {
      const straight = await trace(imageTrainer(make(), 6));
      expectFlatTensorCount(straight.counts);
      const dir = await mkdtemp(join(tmpdir(), 'gantry-augment-'));
      try {
        await imageTrainer(make(), 3, dir).train();
        const plugins = make();
        const resumed = imageTrainer(plugins, 6);
        await resumed.restore(dir);
        const after = await trace(resumed);
        expect(after.rows.map((r) => [r.d_loss, r.g_loss, r['ada/p']])).toEqual(straight.rows.slice(3).map((r) => [r.d_loss, r.g_loss, r['ada/p']]));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('ada logs p and r_t each step; p moves at the interval by ±images/(adaKimg·1000)', async () => {
    const plugin = ada({ initialP: 0.5, interval: 2, adaKimg: 0.2 });
    const { rows } = await trace(imageTrainer([plugin], 4));
    expect(rows.map((r) => r['ada/p'])).toEqual([0.5, 0.5, expect.any(Number), expect.any(Number)]);
    const rt12 = (rows[0]['ada/rt'] + rows[1]['ada/rt']) / 2;
    expect(rows[2]['ada/p']).toBeCloseTo(0.5 + Math.sign(rt12 - 0.6) * 0.08, 6);
    expect(rows[3]['ada/p']).toBe(rows[2]['ada/p']);
    const rt34 = (rows[2]['ada/rt'] + rows[3]['ada/rt']) / 2;
    expect(plugin.p).toBeCloseTo(rows[2]['ada/p'] + Math.sign(rt34 - 0.6) * 0.08, 6);
  });

  it('the augmentations change what D sees: p = 0 gives the plain run, p = 1 differs', async () => {
    const plain = await trace(imageTrainer([], 2));
    const zero = await trace(imageTrainer([ada({ fixedP: 0 })], 2));
    // Step 1's D loss is identical; later latents differ because the augmentation draws advance the run's RNG.
    expect(zero.rows[0].d_loss).toBe(plain.rows[0].d_loss);
    const one = await trace(imageTrainer([ada({ fixedP: 1 })], 2));
    expect(one.rows[0].d_loss).not.toBe(plain.rows[0].d_loss);
  });
});
