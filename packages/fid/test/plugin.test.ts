import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, Trainer, withSeed, type Batch, type DataSource, type GantryEvents } from '@gantry/core';
import { useBackend } from '@gantry/engine';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClassAgreement, compareSets, extractFeatures, fid, frechetDistance, type FeatureExtractor } from '../src/index.js';

beforeAll(async () => {
  // Through the engine, as the other files here do: in vitest's single fork tfjs's registries outlive a file, so a
  // file that ran useBackend() earlier leaves the engine's fused-op gradients registered, and a plain setBackend('cpu')
  // would train with them but without the kernel wrappers they read (which file runs first depends on vitest's order).
  await useBackend('cpu', { quiet: true });
  tf.enableProdMode();
});

/** Features = the 16 pixels of a 4×4 image, so the test needs no network. */
const flatExtractor: FeatureExtractor = {
  name: 'flat-4x4',
  dims: 16,
  resize: 'none (4×4)',
  extract: (images) => tf.reshape(images, [images.shape[0], 16]) as tf.Tensor2D,
  dispose: () => undefined,
};

/** 4×4 images in [-0.8, 0.8], a pure function of (seed, batch); tfjs treats seed 0 as "no seed", hence the + 1. */
function tinyImages(): DataSource & { size: number } {
  return {
    name: 'tiny-images',
    elementShape: [4, 4, 1],
    size: 96,
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (let i = start; ; i++) yield { x: tf.tidy(() => tf.mul(tf.tanh(tf.randomNormal([batchSize, 4, 4, 1], 0, 1, 'float32', seed * 31 + i + 1)), 0.8)) };
    },
  };
}

function tinyGan() {
  return withSeed(3, () => {
    const generator = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [4], units: 16, activation: 'tanh' }), tfl.layers.reshape({ targetShape: [4, 4, 1] })],
    });
    const discriminator = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 1 })] });
    return { generator, discriminator };
  });
}

describe('fid plugin', () => {
  it('emits FID and KID every N steps with N, extractor and resize, without leaking tensors', async () => {
    const { generator, discriminator } = tinyGan();
    const plugin = fid({ every: 2, samples: 40, real: tinyImages(), realSamples: 64, extractor: flatExtractor, kid: { subsets: 5 }, batchSize: 16 });
    const trainer = new Trainer({ generator, discriminator, data: tinyImages(), steps: 6, batchSize: 8, plugins: [plugin] });
    const evals: GantryEvents['eval'][] = [];
    const tensorsAfterStep: number[] = [];
    trainer.on('eval', (e) => void evals.push(e));
    trainer.on('step:end', () => void tensorsAfterStep.push(tf.memory().numTensors));
    await trainer.train();
    expect(evals.map((e) => e.step)).toEqual([2, 4, 6]);
    for (const e of evals) {
      expect(e.metrics.fid).toBeGreaterThan(0);
      expect(Number.isFinite(e.metrics.kid)).toBe(true);
      expect(e.meta).toMatchObject({ n_real: 64, n_fake: 40, extractor: 'flat-4x4', resize: 'none (4×4)', dims: 16, kid_subsets: '5×40' });
    }
    // The generator trains, so its FID changes between evaluations.
    expect(evals[2].metrics.fid).not.toBe(evals[0].metrics.fid);
    expect(tensorsAfterStep[3]).toBe(tensorsAfterStep[1]);
    expect(tensorsAfterStep[5]).toBe(tensorsAfterStep[1]);
    generator.dispose();
    discriminator.dispose();
  });

  it('atEnd: also evaluates at the last step when it is not a multiple of every', async () => {
    const steps: number[][] = [];
    for (const atEnd of [true, false]) {
      const { generator, discriminator } = tinyGan();
      const plugin = fid({ every: 2, atEnd, samples: 20, real: tinyImages(), realSamples: 32, extractor: flatExtractor, batchSize: 10 });
      const trainer = new Trainer({ generator, discriminator, data: tinyImages(), steps: 5, batchSize: 8, plugins: [plugin] });
      const evals: number[] = [];
      trainer.on('eval', (e) => void evals.push(e.step));
      await trainer.train();
      steps.push(evals);
      generator.dispose();
      discriminator.dispose();
    }
    expect(steps).toEqual([
      [2, 4, 5],
      [2, 4],
    ]);
  });

  it('gives the same FID as an independent extraction, from a DataSource or from precomputed moments', async () => {
    const { generator, discriminator } = tinyGan();
    const real = await extractFeatures(
      (function* () {
        const it = tinyImages().batches({ batchSize: 32, seed: 0, start: 0 }) as Iterator<Batch>;
        for (let i = 0; i < 2; i++) yield it.next().value!.x as tf.Tensor4D;
      })(),
      flatExtractor,
    );
    const precomputed = { ...real.stats.moments(), extractor: real.extractor, resize: real.resize };
    const values: number[] = [];
    for (const source of [tinyImages(), precomputed]) {
      const trainer = new Trainer({
        generator,
        discriminator,
        data: tinyImages(),
        steps: 1,
        plugins: [fid({ every: 1, samples: 50, real: source, realSamples: 64, extractor: flatExtractor, batchSize: 32, seed: 9 })],
      });
      trainer.on('eval', (e) => void values.push(e.metrics.fid));
      // Zero learning rates keep the generator fixed, so both runs see the same network.
      (trainer.optimizers.generator as unknown as { learningRate: number }).learningRate = 0;
      (trainer.optimizers.discriminator as unknown as { learningRate: number }).learningRate = 0;
      await trainer.train();
      // Independent check: the same latents (seed 9, drawn per batch of 32) through trainer.generate.
      const rng = new Rng(9);
      const batches = [32, 18].map((n) => tf.tidy(() => trainer.generate(trainer.sampleLatent(n, rng)) as tf.Tensor4D));
      const fake = await extractFeatures(batches, flatExtractor);
      expect(values.at(-1)).toBeCloseTo(frechetDistance(real.stats.moments(), fake.stats.moments()).value, 6);
      expect(compareSets(real, fake).fid).toBeCloseTo(values.at(-1)!, 6);
    }
    expect(values[1]).toBeCloseTo(values[0], 9);
    generator.dispose();
    discriminator.dispose();
  });

  it('rejects unknown options and comparisons across extractors', () => {
    expect(() => fid({ every: 1, real: tinyImages(), sample: 5 } as never)).toThrow(/Unknown option "sample"/);
    const a = { n: 2, dims: 1, mean: Float64Array.of(0), cov: Float64Array.of(1), extractor: 'a', resize: 'none' };
    const fake = { stats: null as never, n: 2, dims: 1, extractor: 'b', resize: 'none' };
    expect(() => compareSets(a, fake)).toThrow(/cannot compare features from "a" with features from "b"/);
  });
});

describe('class accuracy of a conditional generator', () => {
  /** classify: softmax over the first 3 pixels of a 4×4 image. */
  const firstPixels: FeatureExtractor = {
    ...flatExtractor,
    name: 'first-pixels',
    classify: (images) => tf.tidy(() => tf.softmax(tf.slice(tf.reshape(images, [images.shape[0], 16]), [0, 0], [-1, 3]))) as tf.Tensor2D,
  };

  it('ClassAgreement counts, per requested class, how often the classifier agrees', async () => {
    const acc = new ClassAgreement(3);
    // Images whose brightest of the first 3 pixels is 0, 1, 1, 2, 0.
    const brightest = [0, 1, 1, 2, 0];
    const images = tf.tensor4d(brightest.flatMap((k) => Array.from({ length: 16 }, (_, p) => (p === k ? 0.9 : -0.5))), [5, 4, 4, 1]);
    acc.add(firstPixels, images, [0, 1, 2, 2, 1]);
    images.dispose();
    // class 0: 1/1, class 1: 1/2 (second asked-for 1 came out 0), class 2: 1/2; overall 3/5.
    expect(await acc.read()).toEqual({ class_acc: 3 / 5, class_acc_0: 1, class_acc_1: 0.5, class_acc_2: 0.5 });
  });

  it('the fid plugin adds class_acc and class_acc_k to the eval row of a conditional run', async () => {
    const { generator, discriminator } = withSeed(5, () => {
      const z = tfl.input({ shape: [4] });
      const label = tfl.input({ shape: [3] });
      const image = tfl.layers.dense({ units: 16, activation: 'tanh', useBias: false, name: 'from_label' }).apply(label) as tfl.SymbolicTensor;
      // z enters with zero weight so the class alone decides the image.
      const noise = tfl.layers.dense({ units: 16, useBias: false, kernelInitializer: 'zeros', name: 'from_z' }).apply(z) as tfl.SymbolicTensor;
      const sum = tfl.layers.add().apply([image, noise]) as tfl.SymbolicTensor;
      const g = tfl.model({ inputs: [z, label], outputs: tfl.layers.reshape({ targetShape: [4, 4, 1] }).apply(sum) as tfl.SymbolicTensor });
      const x = tfl.input({ shape: [4, 4, 1] });
      const dLabel = tfl.input({ shape: [3] });
      const flat = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
      const d = tfl.model({ inputs: [x, dLabel], outputs: tfl.layers.dense({ units: 1 }).apply(tfl.layers.concatenate().apply([flat, dLabel])) as tfl.SymbolicTensor });
      return { generator: g, discriminator: d };
    });
    // Class 0 → pixel 0 bright, class 1 → pixel 1, class 2 → pixel 0 too (a generator that gets class 2 wrong).
    const kernel = new Float32Array(3 * 16).fill(-2);
    kernel[0 * 16 + 0] = 3;
    kernel[1 * 16 + 1] = 3;
    kernel[2 * 16 + 0] = 3;
    generator.getLayer('from_label').setWeights([tf.tensor2d(kernel, [3, 16])]);
    const labelled: DataSource = {
      ...tinyImages(),
      numClasses: 3,
      *batches(options) {
        const images = tinyImages().batches(options) as Iterator<Batch>;
        for (let i = options.start; ; i++) {
          const { x } = images.next().value as Batch;
          yield { x, labels: tf.tensor1d(Array.from({ length: options.batchSize }, (_, k) => (i + k) % 3), 'int32') };
        }
      },
    };
    const plugin = fid({ every: 1, samples: 30, real: labelled, realSamples: 30, extractor: firstPixels, batchSize: 10 });
    const trainer = new Trainer({
      generator,
      discriminator,
      data: labelled,
      steps: 1,
      batchSize: 6,
      plugins: [plugin],
      optimizers: { generator: tf.train.sgd(1e-6), discriminator: tf.train.sgd(1e-6) },
    });
    const evals: GantryEvents['eval'][] = [];
    trainer.on('eval', (e) => void evals.push(e));
    await trainer.train();
    expect(evals[0].metrics).toMatchObject({ class_acc: 2 / 3, class_acc_0: 1, class_acc_1: 1, class_acc_2: 0 });
    expect(Number.isFinite(evals[0].metrics.fid)).toBe(true);
    generator.dispose();
    discriminator.dispose();
  });
});
