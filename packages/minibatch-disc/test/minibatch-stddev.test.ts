import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { withSeed } from '@gantry/core';
import { MinibatchStdDev, effectiveGroupSize, minibatchStdDev } from '../src/index.js';
import { centralDifferences, maxAbsDiff, roundTrip, run } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * Float64 reference of the extra feature for flat samples x [N][F]: groups of G samples {k, k + N/G, k + 2N/G, …};
 * per feature sqrt(population variance over the group + ε); mean over features.
 */
function referenceStd(x: number[][], g: number, epsilon = 1e-8): number[] {
  const n = x.length;
  const groups = n / g;
  return x.map((_, i) => {
    const members = Array.from({ length: g }, (_, k) => x[(i % groups) + k * groups]);
    const stds = x[0].map((_, f) => {
      const mean = members.reduce((s, m) => s + m[f], 0) / g;
      return Math.sqrt(members.reduce((s, m) => s + (m[f] - mean) ** 2, 0) / g + epsilon);
    });
    return stds.reduce((a, b) => a + b, 0) / stds.length;
  });
}

/** [N, H, W, C] → [N][H·W·C] in row-major order (the per-sample flattening used by the reference). */
const flatSamples = (t: tf.Tensor) => (tf.reshape(t, [t.shape[0], -1]).arraySync() as number[][]);

describe('effectiveGroupSize', () => {
  it('is the largest divisor of the batch that does not exceed the group size', () => {
    expect([8, 4, 6, 5, 7, 2, 1, 12, 9].map((n) => effectiveGroupSize(n, 4))).toEqual([4, 4, 3, 1, 1, 2, 1, 4, 3]);
    expect(effectiveGroupSize(10, 8)).toBe(5);
  });
});

describe('minibatchStdDev', () => {
  it('appends one feature map holding the group std, equal to the float64 reference (image input, batch 8, group 4)', () => {
    const x = withSeed(1, () => tf.randomNormal([8, 3, 3, 2], 0, 1, 'float32', 1));
    const out = run(minibatchStdDev(), x);
    expect(out.shape).toEqual([8, 3, 3, 3]);
    const extra = tf.slice(out, [0, 0, 0, 2], [8, 3, 3, 1]);
    const expected = referenceStd(flatSamples(x), 4);
    // The map is constant over H and W.
    const perSample = (tf.reshape(extra, [8, 9]).arraySync() as number[][]).map((row) => {
      expect(Math.max(...row) - Math.min(...row)).toBe(0);
      return row[0];
    });
    expect(maxAbsDiff(perSample, expected)).toBeLessThan(1e-5);
    expect(Array.from(tf.slice(out, [0, 0, 0, 0], [8, 3, 3, 2]).dataSync())).toEqual(Array.from(x.dataSync()));
  });

  it('groups samples with stride N/G: a constant group gets ≈ 0, the other its spread', () => {
    // Batch 8, group 4 → groups {0, 2, 4, 6} and {1, 3, 5, 7}.
    const rows = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? [1, 1] : [i, -i]));
    const out = run(minibatchStdDev({ groupSize: 4 }), tf.tensor2d(rows));
    const extra = Array.from(tf.slice(out, [0, 2], [8, 1]).dataSync());
    // Odd samples 1, 3, 5, 7: population std 2.236 for each of the two features.
    for (let i = 0; i < 8; i++) expect(extra[i]).toBeCloseTo(i % 2 === 0 ? 1e-4 : Math.sqrt(5), 4);
  });

  it('a batch of identical samples gives zero std (sqrt(ε) = 1e-4)', () => {
    const x = tf.tile(tf.tensor4d([0.5, -2, 3, 1], [1, 2, 2, 1]), [4, 1, 1, 1]);
    const extra = tf.slice(run(minibatchStdDev(), x), [0, 0, 0, 1], [4, 2, 2, 1]);
    for (const v of extra.dataSync()) expect(v).toBeCloseTo(1e-4, 8);
  });

  it('batch sizes that do not divide the group use the largest divisor ≤ groupSize; shapes hold', () => {
    for (const [n, g] of [
      [4, 4],
      [6, 3],
      [5, 1],
      [7, 1],
      [10, 2],
    ] as const) {
      const x = tf.randomNormal([n, 2, 2, 3], 0, 1, 'float32', n);
      const out = run(minibatchStdDev({ groupSize: 4 }), x);
      expect(out.shape).toEqual([n, 2, 2, 4]);
      const extra = (tf.reshape(tf.slice(out, [0, 0, 0, 3], [n, 1, 1, 1]), [n]).arraySync() as number[]);
      expect(maxAbsDiff(extra, referenceStd(flatSamples(x), g))).toBeLessThan(1e-5);
    }
    const sym = minibatchStdDev().apply(tfl.input({ shape: [4, 4, 8] })) as tfl.SymbolicTensor;
    expect(sym.shape).toEqual([null, 4, 4, 9]);
    const flat = minibatchStdDev().apply(tfl.input({ shape: [5] })) as tfl.SymbolicTensor;
    expect(flat.shape).toEqual([null, 6]);
  });

  it('gradient with respect to the input equals float64 central differences (tolerance 1e-4)', () => {
    const x0 = tf.randomNormal([6, 3], 0, 1, 'float32', 7);
    const r = tf.randomNormal([6, 4], 0, 1, 'float32', 8);
    const rs = r.arraySync() as number[][];
    const layer = minibatchStdDev({ groupSize: 3 });
    const dx = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(r, run(layer, x))))(x0).arraySync() as number[][];
    const loss = (x: number[][]) => {
      const std = referenceStd(x, 3);
      return x.reduce((s, row, i) => s + row.reduce((ss, v, f) => ss + v * rs[i][f], 0) + std[i] * rs[i][3], 0);
    };
    expect(maxAbsDiff(dx, centralDifferences(x0.arraySync() as number[][], loss))).toBeLessThan(1e-4);
  });

  it('saves and reloads with identical outputs', async () => {
    const model = withSeed(2, () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3, padding: 'same' }),
          minibatchStdDev({ groupSize: 2, epsilon: 1e-6 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 1 }),
        ],
      }),
    );
    const reloaded = await roundTrip(model);
    const layer = reloaded.layers[1] as MinibatchStdDev;
    expect([layer.groupSize, layer.epsilon]).toEqual([2, 1e-6]);
    const x = tf.randomNormal([4, 4, 4, 1], 0, 1, 'float32', 3);
    expect(Array.from((reloaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
  });
});
