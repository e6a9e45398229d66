import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { withSeed } from '@gantry/core';
import { MinibatchDiscrimination, minibatchDiscrimination } from '../src/index.js';
import { centralDifferences, maxAbsDiff, roundTrip, run } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Float64 reference of the paper's formulas with explicit loops: x [N][A], t [A][B·C] → [N][A + B]. */
function reference(x: number[][], t: number[][], kernels: number, dims: number): number[][] {
  const m = x.map((xi) =>
    Array.from({ length: kernels }, (_, b) =>
      Array.from({ length: dims }, (_, c) => xi.reduce((s, xa, a) => s + xa * t[a][b * dims + c], 0)),
    ),
  );
  return x.map((xi, i) => {
    const o = Array.from({ length: kernels }, (_, b) => {
      let total = 0;
      for (let j = 0; j < x.length; j++) {
        if (j === i) continue;
        let l1 = 0;
        for (let c = 0; c < dims; c++) l1 += Math.abs(m[i][b][c] - m[j][b][c]);
        total += Math.exp(-l1);
      }
      return total;
    });
    return [...xi, ...o];
  });
}

function layerWith(t: number[][], kernels: number, dims: number): MinibatchDiscrimination {
  const layer = minibatchDiscrimination({ kernels, dims });
  run(layer, tf.zeros([1, t.length])).dispose(); // builds
  layer.setWeights([tf.tensor2d(t)]);
  return layer;
}

describe('minibatchDiscrimination', () => {
  it('matches the paper formulas (float64 loops) on random input', () => {
    const x = withSeed(1, () => tf.randomNormal([5, 4], 0, 1, 'float32', 1));
    const t = tf.randomNormal([4, 3 * 2], 0, 0.3, 'float32', 2);
    const layer = layerWith(t.arraySync() as number[][], 3, 2);
    const out = run(layer, x);
    expect(out.shape).toEqual([5, 7]);
    const expected = reference(x.arraySync() as number[][], t.arraySync() as number[][], 3, 2);
    expect(maxAbsDiff(out.arraySync() as number[][], expected)).toBeLessThan(1e-5);
    tf.dispose([x, t, out]);
    layer.dispose();
  });

  it('a batch of identical samples gives c = 1 for every pair: o = N − 1 in every kernel', () => {
    const x = tf.tile(tf.tensor2d([[0.3, -1.2, 2.0]]), [6, 1]);
    const layer = minibatchDiscrimination({ kernels: 4, dims: 3 });
    const out = run(layer, x);
    const o = tf.slice(out, [0, 3], [6, 4]);
    expect(Array.from(o.dataSync())).toEqual(new Array(24).fill(5));
    // The features pass through unchanged.
    expect(Array.from(tf.slice(out, [0, 0], [6, 3]).dataSync())).toEqual(Array.from(x.dataSync()));
    tf.dispose([x, out, o]);
    layer.dispose();
  });

  it('two far-apart samples give o ≈ 0', () => {
    const x = tf.tensor2d([
      [0, 0],
      [50, -50],
    ]);
    const layer = layerWith(
      [
        [1, 0, 0.5, 1],
        [0, 1, -0.5, 0],
      ],
      2,
      2,
    );
    const o = tf.slice(run(layer, x), [0, 2], [2, 2]);
    // Distances are 100 and 100 (kernel 0) and 100 and 50 (kernel 1): e^−50 ≈ 2e−22.
    expect(Math.max(...o.dataSync())).toBeLessThan(1e-20);
    tf.dispose([x, o]);
    layer.dispose();
  });

  it('output shape [N, A + B] for several batch sizes, symbolic and concrete', () => {
    const layer = minibatchDiscrimination({ kernels: 5, dims: 3 });
    const sym = layer.apply(tfl.input({ shape: [7] })) as tfl.SymbolicTensor;
    expect(sym.shape).toEqual([null, 12]);
    for (const n of [1, 2, 9]) {
      const out = run(layer, tf.zeros([n, 7]));
      expect(out.shape).toEqual([n, 12]);
      out.dispose();
    }
    expect(() => run(minibatchDiscrimination({ kernels: 2, dims: 2 }), tf.zeros([2, 3, 3]))).toThrow(/flatten/);
    expect(() => minibatchDiscrimination({ kernels: 0, dims: 2 })).toThrow(/kernels must be a positive integer/);
  });

  it('gradients with respect to the input and T equal float64 central differences (tolerance 2e-4)', () => {
    const x0 = withSeed(3, () => tf.randomNormal([4, 3], 0, 1, 'float32', 3));
    const t0 = tf.randomNormal([3, 2 * 2], 0, 0.5, 'float32', 4);
    const r = tf.randomNormal([4, 5], 0, 1, 'float32', 5);
    const xs = x0.arraySync() as number[][];
    const ts = t0.arraySync() as number[][];
    const rs = r.arraySync() as number[][];
    const layer = layerWith(ts, 2, 2);
    const kernel = layer.trainableWeights[0].read() as tf.Variable;
    const [dx, dT] = (() => {
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(r, run(layer, x0))) as tf.Scalar, [kernel]);
      const dxT = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(r, run(layer, x))))(x0);
      return [dxT.arraySync() as number[][], grads[kernel.name].arraySync() as number[][]];
    })();
    const loss = (x: number[][], t: number[][]) =>
      reference(x, t, 2, 2).reduce((s, row, i) => s + row.reduce((ss, v, k) => ss + v * rs[i][k], 0), 0);
    expect(maxAbsDiff(dx, centralDifferences(xs, (x) => loss(x, ts)))).toBeLessThan(2e-4);
    expect(maxAbsDiff(dT, centralDifferences(ts, (t) => loss(xs, t)))).toBeLessThan(2e-4);
    layer.dispose();
  });

  it('saves and reloads with identical outputs', async () => {
    const model = withSeed(9, () =>
      tfl.sequential({
        layers: [tfl.layers.dense({ inputShape: [3], units: 4 }), minibatchDiscrimination({ kernels: 3, dims: 2 }), tfl.layers.dense({ units: 1 })],
      }),
    );
    const reloaded = await roundTrip(model);
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 10);
    expect(Array.from((reloaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
    const layer = reloaded.layers[1] as MinibatchDiscrimination;
    expect([layer.kernels, layer.dims]).toEqual([3, 2]);
  });
});
