import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Trainer, withSeed, type Batch } from '@gantry/core';
import { gradientPenalty, r1, r2, weightClipping, wgan, wganDefaults, wganGpDefaults } from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function endless(make: () => tf.Tensor | Batch): Iterable<tf.Tensor | Batch> {
  return {
    *[Symbol.iterator]() {
      for (;;) yield make();
    },
  };
}

function smallModels(seed: number, dims = 3) {
  return withSeed(seed, () => ({
    generator: tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: dims, activation: 'tanh' })] }),
    discriminator: tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [dims], units: 8 }), tfl.layers.leakyReLU({ alpha: 0.2 }), tfl.layers.dense({ units: 1 })],
    }),
  }));
}

async function trainCollecting(trainer: Trainer) {
  const scalars: Record<number, Record<string, number>> = {};
  const tensors: number[] = [];
  trainer.on('step:end', ({ step, scalars: s }) => {
    scalars[step] = s;
    tensors.push(tf.memory().numTensors);
  });
  await trainer.train();
  return { scalars, tensors };
}

describe('wgan()', () => {
  it('critic loss E[D(fake)] − E[D(real)], generator loss −E[D(fake)]', () => {
    const loss = wgan();
    const real = tf.tensor1d([1, 2, 3]);
    const fake = tf.tensor1d([-1, 0.5]);
    expect(loss.discriminatorLoss(real, fake).dataSync()[0]).toBeCloseTo(-0.25 - 2, 6);
    expect(loss.generatorLoss(fake).dataSync()[0]).toBeCloseTo(0.25, 6);
  });

  it('presets hold the paper settings and give fresh optimizers each call', () => {
    const gp = wganGpDefaults();
    expect(gp.nCritic).toBe(5);
    expect(gp.loss.name).toBe('wgan');
    const adam = gp.optimizers.discriminator.getConfig();
    expect([adam.learningRate, adam.beta1, adam.beta2]).toEqual([1e-4, 0, 0.9]);
    expect(wganGpDefaults().optimizers.discriminator).not.toBe(gp.optimizers.discriminator);
    const clip = wganDefaults();
    expect(clip.nCritic).toBe(5);
    expect(clip.optimizers.generator.getConfig().learningRate).toBe(5e-5);
  });
});

describe('weightClipping', () => {
  it('bounds every trainable critic weight by c after the steps (and leaves the generator alone)', async () => {
    const { generator, discriminator } = smallModels(1);
    const c = 0.01;
    const initiallyOutside = discriminator.trainableWeights
      .flatMap((w) => Array.from(w.read().dataSync()))
      .filter((v) => Math.abs(v) > c).length;
    const trainer = new Trainer({
      generator,
      discriminator,
      data: endless(() => tf.randomUniform([16, 3], -1, 1)),
      steps: 3,
      ...wganDefaults(),
      nCritic: 2,
      plugins: [weightClipping({ c })],
    });
    const { tensors } = await trainCollecting(trainer);
    const dValues = discriminator.trainableWeights.flatMap((w) => Array.from(w.read().dataSync()));
    expect(Math.max(...dValues.map(Math.abs))).toBeLessThanOrEqual(c);
    // Clipping was active: most initial weights lay outside [−c, c], and some now sit exactly on the bound.
    expect(initiallyOutside).toBeGreaterThan(dValues.length / 2);
    expect(dValues.some((v) => Math.abs(v) === Math.fround(c))).toBe(true);
    const gValues = generator.trainableWeights.flatMap((w) => Array.from(w.read().dataSync()));
    expect(Math.max(...gValues.map(Math.abs))).toBeGreaterThan(c);
    expect(tensors[2]).toBe(tensors[1]);
  });

  it('rejects a non-positive c', () => {
    expect(() => weightClipping({ c: 0 })).toThrow(/c must be a positive number/);
  });
});

describe('gradientPenalty in the Trainer', () => {
  it('step 1 records D/gradient-penalty = λ(‖w‖ − 1)² for a linear conditional critic, with no tensor growth', async () => {
    const { generator, discriminator } = withSeed(2, () => {
      const z = tfl.input({ shape: [2] });
      const gl = tfl.input({ shape: [3] });
      const g = tfl.layers.dense({ units: 4, activation: 'tanh' }).apply(tfl.layers.concatenate().apply([z, gl])) as tfl.SymbolicTensor;
      const x = tfl.input({ shape: [4] });
      const dl = tfl.input({ shape: [3] });
      const d = tfl.layers.dense({ units: 1, name: 'critic' }).apply(tfl.layers.concatenate().apply([x, dl])) as tfl.SymbolicTensor;
      return { generator: tfl.model({ inputs: [z, gl], outputs: g }), discriminator: tfl.model({ inputs: [x, dl], outputs: d }) };
    });
    const w = Array.from(discriminator.getLayer('critic').getWeights()[0].dataSync()).slice(0, 4); // image part of the kernel
    const expected = 10 * (Math.hypot(...w) - 1) ** 2;
    const trainer = new Trainer({
      generator,
      discriminator,
      data: endless(() => ({ x: tf.randomUniform([8, 4], -1, 1), labels: tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32') })),
      steps: 4,
      loss: wgan(),
      plugins: [gradientPenalty()],
    });
    const { scalars, tensors } = await trainCollecting(trainer);
    expect(scalars[1]['D/gradient-penalty']).toBeCloseTo(expected, 4);
    expect(scalars[1]['gradient-penalty/grad_norm']).toBeCloseTo(Math.hypot(...w), 5);
    expect(tensors[3]).toBe(tensors[1]);
  });

  it('a WGAN-GP run (paper defaults) on a leaky-ReLU critic moves the gradient norm towards 1', async () => {
    const { generator, discriminator } = smallModels(3);
    // Scale up the critic so that its gradient norm starts far above 1.
    const first = discriminator.layers[0];
    first.setWeights([tf.mul(first.getWeights()[0], 6), first.getWeights()[1]]);
    const trainer = new Trainer({
      generator,
      discriminator,
      data: endless(() => tf.randomUniform([32, 3], -1, 1)),
      steps: 40,
      ...wganGpDefaults(),
      optimizers: { generator: tf.train.adam(1e-3, 0, 0.9), discriminator: tf.train.adam(1e-2, 0, 0.9) },
      plugins: [gradientPenalty()],
    });
    const { scalars } = await trainCollecting(trainer);
    const start = scalars[1]['gradient-penalty/grad_norm'];
    const end = scalars[40]['gradient-penalty/grad_norm'];
    expect(start).toBeGreaterThan(2);
    expect(Math.abs(end - 1)).toBeLessThan(0.25 * Math.abs(start - 1));
  });
});

describe('lazy R1 / R2', () => {
  /** D(x) = ½xᵀAx with symmetric A, frozen by a zero learning rate, so every step sees the same critic. */
  function frozenQuadratic(a: number[][]) {
    const d = a.length;
    const x = tfl.input({ shape: [d] });
    const ax = tfl.layers.dense({ units: d, useBias: false, name: 'A' }).apply(x) as tfl.SymbolicTensor;
    const prod = tfl.layers.multiply().apply([x, ax]) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 1, useBias: false, trainable: false, name: 'half' }).apply(prod) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: out });
    model.getLayer('A').setWeights([tf.tensor2d(a)]);
    model.getLayer('half').setWeights([tf.fill([d, 1], 0.5)]);
    return model;
  }
  const A = [
    [1, 0.5],
    [0.5, -2],
  ];
  const mulA = (x: number[]) => A.map((row) => row[0] * x[0] + row[1] * x[1]);

  it('r1({ gamma: 2, every: 4 }): the term appears on steps 4 and 8 only, equal to 4 · (γ/2) · mean‖Ax‖²', async () => {
    const realRows = [
      [0.5, -0.2],
      [-0.7, 0.9],
      [0.1, 0.3],
      [0.8, 0.8],
    ];
    const trainer = new Trainer({
      generator: withSeed(5, () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 2 })] })),
      discriminator: frozenQuadratic(A),
      data: endless(() => tf.tensor2d(realRows)),
      steps: 8,
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0) },
      plugins: [r1({ gamma: 2, every: 4 })],
    });
    const { scalars } = await trainCollecting(trainer);
    const meanSq = realRows.reduce((s, x) => s + Math.hypot(...mulA(x)) ** 2, 0) / realRows.length;
    for (let step = 1; step <= 8; step++) {
      if (step % 4 === 0) {
        expect(scalars[step]['D/r1']).toBeCloseTo(4 * (2 / 2) * meanSq, 4);
        expect(scalars[step]['r1/grad_norm_sq']).toBeCloseTo(meanSq, 4);
      } else {
        expect(scalars[step]['D/r1']).toBeUndefined();
      }
    }
  });

  it('r2 penalizes the generated samples', async () => {
    // G outputs the constant c (zero kernel, bias c): R2 = (γ/2)‖Ac‖².
    const generator = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 2, kernelInitializer: 'zeros' })] });
    generator.layers[0].setWeights([tf.zeros([2, 2]), tf.tensor1d([0.4, -0.6])]);
    const trainer = new Trainer({
      generator,
      discriminator: frozenQuadratic(A),
      data: endless(() => tf.randomUniform([4, 2], -1, 1)),
      steps: 1,
      optimizers: { generator: tf.train.sgd(0), discriminator: tf.train.sgd(0) },
      plugins: [r2({ gamma: 5 })],
    });
    const { scalars } = await trainCollecting(trainer);
    expect(scalars[1]['D/r2']).toBeCloseTo((5 / 2) * Math.hypot(...mulA([0.4, -0.6])) ** 2, 4);
  });
});
