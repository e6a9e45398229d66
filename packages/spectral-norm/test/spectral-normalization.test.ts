import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { withSeed } from '@gantry/core';
import { SpectralNormalization } from '../src/index.js';
import { largestSingularValue, relErr, run, weightMatrix } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Kind = 'Dense' | 'Conv2D' | 'Conv2DTranspose';

function makeWrapped(kind: Kind, seed: number, powerIterations = 1): { sn: SpectralNormalization; x: tf.Tensor } {
  return withSeed(seed, () => {
    const inner =
      kind === 'Dense'
        ? tfl.layers.dense({ units: 7 })
        : kind === 'Conv2D'
          ? tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same' })
          : tfl.layers.conv2dTranspose({ filters: 5, kernelSize: 3, strides: 2, padding: 'same' });
    const sn = new SpectralNormalization({ layer: inner, powerIterations });
    const x = kind === 'Dense' ? tf.randomNormal([4, 12], 0, 1, 'float32', seed) : tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', seed);
    run(sn, x).dispose(); // builds
    return { sn, x };
  });
}

// getWeights() hands out the variables themselves: never dispose them.
function kernelOf(sn: SpectralNormalization): tf.Tensor {
  return sn.getWeights()[0];
}

describe('SpectralNormalization: power iteration', () => {
  for (const kind of ['Dense', 'Conv2D', 'Conv2DTranspose'] as const) {
    it(`${kind}: σ converges to the largest singular value (float64 SVD) within 1e-3, u has one entry per output channel`, () => {
      const { sn, x } = makeWrapped(kind, 11);
      for (let i = 0; i < 60; i++) run(sn, x, true).dispose();
      const kernel = kernelOf(sn);
      const reference = largestSingularValue(weightMatrix(kernel.dataSync(), kernel.shape, kind));
      const sigma = sn.sigma();
      expect(relErr(sigma.dataSync()[0], reference)).toBeLessThan(1e-3);
      const u = sn.getWeights()[2];
      expect(u.shape).toEqual([kind === 'Dense' ? 7 : kind === 'Conv2D' ? 6 : 5]);
      // The normalized kernel W/σ has spectral norm 1.
      const normalized = sn.normalizedKernel();
      expect(Math.abs(largestSingularValue(weightMatrix(normalized.dataSync(), normalized.shape, kind)) - 1)).toBeLessThan(1e-3);
      tf.dispose([sigma, normalized, x]);
      sn.dispose();
    });
  }

  it('Conv2DTranspose uses its output-channel axis (2): the other reading gives a different σ', () => {
    const { sn, x } = makeWrapped('Conv2DTranspose', 5, 50);
    run(sn, x, true).dispose();
    const kernel = kernelOf(sn); // [3, 3, 5 (out), 3 (in)]
    const right = largestSingularValue(weightMatrix(kernel.dataSync(), kernel.shape, 'Conv2DTranspose'));
    // Reading the last axis (in) as rows, the Conv2D convention, gives another matrix with another norm.
    const wrong = largestSingularValue(weightMatrix(kernel.dataSync(), kernel.shape, 'Conv2D'));
    expect(relErr(wrong, right)).toBeGreaterThan(0.01);
    const sigma = sn.sigma();
    expect(relErr(sigma.dataSync()[0], right)).toBeLessThan(1e-3);
    tf.dispose([sigma, x]);
    sn.dispose();
  });

  it('powerIterations: 30 in one forward pass reaches the same σ as many passes of 1', () => {
    const { sn, x } = makeWrapped('Dense', 3, 30);
    run(sn, x, true).dispose();
    const kernel = kernelOf(sn);
    const reference = largestSingularValue(weightMatrix(kernel.dataSync(), kernel.shape, 'Dense'));
    const sigma = sn.sigma();
    expect(relErr(sigma.dataSync()[0], reference)).toBeLessThan(1e-3);
    tf.dispose([sigma, x]);
    sn.dispose();
  });

  it('training forwards update u; inference (training false) leaves it unchanged', () => {
    const { sn, x } = makeWrapped('Dense', 4);
    const before = sn.getWeights()[2].dataSync().slice();
    run(sn, x).dispose();
    run(sn, x, false).dispose();
    expect(Array.from(sn.getWeights()[2].dataSync())).toEqual(Array.from(before));
    run(sn, x, true).dispose();
    const after = sn.getWeights()[2].dataSync();
    expect(Math.max(...after.map((a, i) => Math.abs(a - before[i])))).toBeGreaterThan(1e-3);
    // A refined u is unit length.
    expect(Math.hypot(...after)).toBeCloseTo(1, 5);
    x.dispose();
    sn.dispose();
  });
});

describe('SpectralNormalization: forward pass', () => {
  it('Dense computes x·(W/σ) + b with the stock activation', () => {
    const { sn, x } = withSeed(8, () => {
      const sn = new SpectralNormalization({ layer: tfl.layers.dense({ units: 3, activation: 'tanh', biasInitializer: 'randomNormal' }) });
      const x = tf.randomNormal([5, 4], 0, 1, 'float32', 8);
      run(sn, x).dispose();
      return { sn, x };
    });
    const [kernel, bias] = sn.getWeights();
    const sigma = sn.sigma();
    const expected = tf.tanh(tf.add(tf.matMul(x, tf.div(kernel, sigma)), bias));
    const actual = sn.apply(x) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]).toBeLessThan(1e-6);
    sn.dispose();
  });

  it('Conv2D and Conv2DTranspose compute the stock convolution with W/σ', () => {
    for (const kind of ['Conv2D', 'Conv2DTranspose'] as const) {
      const { sn, x } = makeWrapped(kind, 21);
      const [kernel, bias] = sn.getWeights();
      const sigma = sn.sigma();
      const w = tf.div(kernel, sigma) as tf.Tensor4D;
      const expected =
        kind === 'Conv2D'
          ? tf.add(tf.conv2d(x as tf.Tensor4D, w, 1, 'same'), bias)
          : tf.add(tf.conv2dTranspose(x as tf.Tensor4D, w, [2, 10, 10, 5], 2, 'same'), bias);
      const actual = sn.apply(x) as tf.Tensor;
      expect(actual.shape).toEqual(expected.shape);
      expect(tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]).toBeLessThan(1e-5);
      sn.dispose();
    }
  });

  it('rejects layers without a matrix kernel', () => {
    expect(() => new SpectralNormalization({ layer: tfl.layers.batchNormalization() })).toThrow(/wraps Dense, Conv2D, Conv2DTranspose/);
  });
});

describe('SpectralNormalization: gradients equal finite differences', () => {
  // Float64 reference of L(W, b) = Σ r ⊙ (x·W/σ(W) + b) for a linear Dense layer with x [n, fanIn], W [fanIn, out].
  function lossF64(x: number[][], r: number[][], w: number[][], b: number[], sigma: (w: number[][]) => number): number {
    const s = sigma(w);
    let total = 0;
    for (let n = 0; n < x.length; n++)
      for (let o = 0; o < b.length; o++) {
        let y = b[o];
        for (let i = 0; i < w.length; i++) y += (x[n][i] * w[i][o]) / s;
        total += r[n][o] * y;
      }
    return total;
  }
  const matVec = (w: number[][], u: number[]) => w.map((row) => row.reduce((s, wio, o) => s + wio * u[o], 0));
  const matTVec = (w: number[][], v: number[]) => w[0].map((_, o) => w.reduce((s, row, i) => s + row[o] * v[i], 0));
  const unit = (a: number[]) => {
    const n = Math.hypot(...a);
    return a.map((x) => x / n);
  };

  function setup(seed: number) {
    const { sn, x } = withSeed(seed, () => {
      const sn = new SpectralNormalization({ layer: tfl.layers.dense({ units: 3, biasInitializer: 'randomNormal' }) });
      const x = tf.randomNormal([5, 4], 0, 1, 'float32', seed);
      run(sn, x).dispose();
      return { sn, x };
    });
    const r = tf.randomNormal([5, 3], 0, 1, 'float32', seed + 1);
    const [kernel, bias, u] = sn.getWeights();
    return {
      sn,
      x,
      r,
      w: kernel.arraySync() as number[][],
      b: bias.arraySync() as number[],
      u0: u.arraySync() as number[],
      xs: x.arraySync() as number[][],
      rs: r.arraySync() as number[][],
    };
  }

  function gradients(sn: SpectralNormalization, x: tf.Tensor, r: tf.Tensor, training: boolean) {
    const [kernelVar, biasVar] = sn.trainableWeights.map((v) => v.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(r, sn.apply(x, { training }) as tf.Tensor)) as tf.Scalar, [kernelVar, biasVar]);
    return { dW: grads[kernelVar.name].arraySync() as number[][], db: grads[biasVar.name].arraySync() as number[] };
  }

  function finiteDifferences(w: number[][], b: number[], f: (w: number[][], b: number[]) => number) {
    const h = 1e-6;
    const dW = w.map((row, i) =>
      row.map((_, o) => {
        const plus = w.map((rr) => rr.slice());
        const minus = w.map((rr) => rr.slice());
        plus[i][o] += h;
        minus[i][o] -= h;
        return (f(plus, b) - f(minus, b)) / (2 * h);
      }),
    );
    const db = b.map((_, o) => {
      const plus = b.slice();
      const minus = b.slice();
      plus[o] += h;
      minus[o] -= h;
      return (f(w, plus) - f(w, minus)) / (2 * h);
    });
    return { dW, db };
  }

  const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

  it('training mode: σ = uᵀWv with the refined u and v held constant (tolerance 1e-4)', () => {
    const { sn, x, r, w, b, u0, xs, rs } = setup(31);
    const { dW, db } = gradients(sn, x, r, true);
    // The u and v of that forward pass: one power-iteration round from the stored u, in float64.
    const v1 = unit(matVec(w, u0));
    const u1 = unit(matTVec(w, v1));
    const sigmaFixed = (ww: number[][]) => matVec(ww, u1).reduce((s, mu, i) => s + v1[i] * mu, 0);
    const reference = finiteDifferences(w, b, (ww, bb) => lossF64(xs, rs, ww, bb, sigmaFixed));
    expect(maxDiff(dW, reference.dW)).toBeLessThan(1e-4);
    expect(maxDiff([db], [reference.db])).toBeLessThan(1e-4);
    // Sanity: the gradient is not that of a constant σ (the σ path contributes).
    const sigma0 = sigmaFixed(w);
    const constSigma = finiteDifferences(w, b, (ww, bb) => lossF64(xs, rs, ww, bb, () => sigma0));
    expect(maxDiff(dW, constSigma.dW)).toBeGreaterThan(1e-2);
    sn.dispose();
  });

  it('inference mode (u frozen): the gradient of L(W) with σ(W) = ‖W û‖ (tolerance 1e-4)', () => {
    const { sn, x, r, w, b, u0, xs, rs } = setup(41);
    const { dW, db } = gradients(sn, x, r, false);
    const uHat = unit(u0);
    const reference = finiteDifferences(w, b, (ww, bb) => lossF64(xs, rs, ww, bb, (m) => Math.hypot(...matVec(m, uHat))));
    expect(maxDiff(dW, reference.dW)).toBeLessThan(1e-4);
    expect(maxDiff([db], [reference.db])).toBeLessThan(1e-4);
    sn.dispose();
  });

  it('a training step leaks no tensors', () => {
    const { sn, x, r } = setup(51);
    const optimizer = tf.train.sgd(0.01);
    const step = () =>
      optimizer.minimize(() => tf.sum(tf.mul(r, run(sn, x, true))) as tf.Scalar, true)?.dispose();
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    sn.dispose();
  });
});
