import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, withSeed, type Batch, type DataSource, type GantryPlugin, type TrainerOptions } from '@gantry/core';
import { mlp, pointSource, useCpuBackend } from '@gantry/core/testing';
import { fid } from '@gantry/fid';
import { gradientPenalty, r1 } from '@gantry/loss-wgan';
import { minibatchStdDev } from '@gantry/minibatch-disc';
import { monitorPlugins } from '@gantry/monitor';
import { pacgan } from '@gantry/pacgan';
import { ProgressiveGan, progressive } from '@gantry/progressive';
import { spectralNorm, spectralNormalize } from '@gantry/spectral-norm';
import { adaptiveBalance, ema, featureMatching, gradClip, instanceNoise, labelSmoothing, lecam } from '@gantry/stabilizers';
import { unrolled } from '@gantry/unrolled';

beforeAll(useCpuBackend);

const STEPS = 200;
const CHECKPOINT_EVERY = 10;

/** 4×4×1 images in [-1, 1], a pure function of (seed, batch index). */
const tinyImages: DataSource = {
  name: 'tiny-images',
  elementShape: [4, 4, 1],
  *batches({ batchSize, seed, start }): Iterator<Batch> {
    for (let i = start; ; i++) yield { x: tf.tidy(() => tf.tanh(tf.randomNormal([batchSize, 4, 4, 1], 0, 1, 'float32', seed + i))) };
  },
};

/** Mean and spread of each image: a stand-in feature extractor, so FID runs in milliseconds. */
const momentsExtractor = {
  name: 'moments',
  dims: 2,
  resize: 'none',
  extract: (images: tf.Tensor4D) =>
    tf.tidy(() => {
      const { mean, variance } = tf.moments(tf.reshape(images, [images.shape[0], -1]), 1);
      return tf.stack([mean, tf.sqrt(variance)], 1) as tf.Tensor2D;
    }),
  dispose: () => undefined,
};

const quietStream = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });

/**
 * Trains STEPS steps with a checkpoint every CHECKPOINT_EVERY steps and returns tf.memory().numTensors after each
 * checkpoint (the last step's is the run's final checkpoint).
 */
async function countsAtCheckpoints(options: Omit<TrainerOptions, 'steps'>): Promise<{ counts: number[]; checkpoints: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-leak-'));
  const trainer = new Trainer({ ...options, steps: STEPS, checkpoint: { dir: join(dir, 'checkpoints'), every: CHECKPOINT_EVERY, keep: 2 } });
  const counts: number[] = [];
  trainer.on('checkpoint', () => void counts.push(tf.memory().numTensors));
  await trainer.train();
  return { counts, checkpoints: await readdir(join(dir, 'checkpoints')) };
}

/** Flat after the first few checkpoints (optimizer slots, EMA copies and growth stages are built lazily). */
function expectFlatAfter(counts: number[], warmup: number): void {
  expect(counts).toHaveLength(STEPS / CHECKPOINT_EVERY);
  const tail = counts.slice(warmup);
  expect(Math.max(...tail) - Math.min(...tail), `numTensors at checkpoints: ${counts.join(', ')}`).toBe(0);
}

describe('numTensors stays flat over 200 steps with a checkpoint every 10 and every package’s plugins', () => {
  it('image GAN: loss-wgan, spectral-norm, minibatch-disc, unrolled, stabilizers, monitor and fid together', { timeout: 600_000 }, async () => {
    const runDir = await mkdtemp(join(tmpdir(), 'gantry-leak-run-'));
    const noise = instanceNoise({ sigma: 0.1, annealSteps: 100 });
    const generator = withSeed(1, () =>
      tfl.sequential({
        layers: [tfl.layers.dense({ inputShape: [4], units: 16, activation: 'tanh' }), tfl.layers.reshape({ targetShape: [4, 4, 1] })],
      }),
    );
    const discriminator = spectralNormalize(
      withSeed(2, () =>
        tfl.sequential({
          layers: [
            noise.layer({ inputShape: [4, 4, 1] }),
            minibatchStdDev({ groupSize: 4 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 8 }),
            tfl.layers.leakyReLU({ alpha: 0.2 }),
            tfl.layers.dense({ units: 1 }),
          ],
        }),
      ),
    );
    const plugins: GantryPlugin[] = [
      ...monitorPlugins({ runDir, quiet: true, stream: quietStream(), sampleEvery: 50, tensorboard: true, reportEvery: 100 }),
      fid({ every: 100, samples: 16, realSamples: 16, real: tinyImages, extractor: momentsExtractor, batchSize: 8 }),
      gradientPenalty({ lambda: 1 }),
      r1({ gamma: 1, every: 4 }),
      spectralNorm({ every: 10 }),
      unrolled({ steps: 2 }),
      labelSmoothing(),
      noise,
      gradClip({ maxNorm: 10 }),
      featureMatching({ weight: 0.1 }),
      lecam({ lambda: 0.1 }),
      adaptiveBalance({ threshold: -1 }),
      ema({ beta: 0.9 }),
    ];
    const { counts, checkpoints } = await countsAtCheckpoints({ generator, discriminator, data: tinyImages, batchSize: 8, seed: 3, plugins });
    expect(checkpoints).toContain('step-000200');
    expectFlatAfter(counts, 2);
  });

  it('progressive growing with an EMA generator', { timeout: 600_000 }, async () => {
    const gan = new ProgressiveGan({ latentDim: 8, channels: 1, resolution: 8, filters: [4, 3], seed: 3 });
    const grow = progressive(gan, { stableSteps: 5, fadeSteps: 5, batchSize: [6, 4], padTo: 8 });
    const images: DataSource = {
      name: 'images-8',
      elementShape: [8, 8, 1],
      *batches({ batchSize, seed, start }) {
        for (let i = start; ; i++) yield { x: tf.tidy(() => tf.tanh(tf.randomNormal([batchSize, 8, 8, 1], 0, 1, 'float32', seed + i))) };
      },
    };
    const { counts } = await countsAtCheckpoints({ ...grow.modelsForStep(1), data: images, batchSize: 6, seed: 5, plugins: [grow, ema({ beta: 0.9 })] });
    // Growth ends at step 15; from the second checkpoint after it, nothing may grow.
    expectFlatAfter(counts, 3);
  });

  it('PacGAN on points', { timeout: 600_000 }, async () => {
    const { counts } = await countsAtCheckpoints({
      generator: mlp(3, 8, 2, 1),
      // PacGAN's critic reads 2 packed points.
      discriminator: mlp(4, 8, 1, 2),
      data: pointSource(),
      batchSize: 8,
      seed: 7,
      plugins: [pacgan({ degree: 2 })],
    });
    expectFlatAfter(counts, 2);
  });
});
