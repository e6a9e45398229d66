// Registers the cpu backend these tests compare with, also when a filter (-t) skips the tests that would load it.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GantryError } from '@gantry/core';
import {
  kernelFlops,
  referenceDiscriminator,
  referenceGenerator,
  runBench,
  useBackend,
  type BenchResult,
} from '../src/index.js';
import { canResolve } from '../src/node-require.js';
import { nativeTensorflowInstalled } from '../src/native/load.js';
import {
  convBackpropInput,
  convForward,
  geometry,
  randomValues,
  relativeError,
  type ConvGeometry,
} from './kernels-reference.js';

afterAll(async () => {
  await tf.setBackend('cpu');
});

// ---------------------------------------------------------------------------------------------------------------
// A small conv critic, in float64 JS and in tfjs: x[B,7,7,1] → conv 4, k3, s2, same → leaky relu 0.2
// → conv 3, k3, s2, same → leaky relu 0.2 → flatten(12) → dense 1. Gradient penalty GP = mean_b (‖∇ₓD(x_b)‖ − 1)².
// ---------------------------------------------------------------------------------------------------------------

const ALPHA = 0.2;
const B = 3;
const X_SHAPE = [B, 7, 7, 1];
const K1_SHAPE = [3, 3, 1, 4];
const K2_SHAPE = [3, 3, 4, 3];
const G1 = geometry(X_SHAPE, K1_SHAPE, [2, 2], 'same'); // → 4x4x4
const G2 = geometry([B, 4, 4, 4], K2_SHAPE, [2, 2], 'same'); // → 2x2x3
const FLAT = G2.OH * G2.OW * G2.Co;

interface CriticParams {
  k1: Float64Array;
  b1: Float64Array;
  k2: Float64Array;
  b2: Float64Array;
  w: Float64Array;
  c: Float64Array;
}
const PARAM_NAMES = ['k1', 'b1', 'k2', 'b2', 'w', 'c'] as const;

function addBiasLeaky(a: Float64Array, bias: Float64Array, g: ConvGeometry): { h: Float64Array; slope: Float64Array } {
  const h = new Float64Array(a.length);
  const slope = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i] + bias[i % g.Co];
    slope[i] = v > 0 ? 1 : ALPHA;
    h[i] = v * slope[i];
  }
  return { h, slope };
}

/** Float64 gradient penalty of the critic at x, with the input gradient derived by hand. */
function gradientPenalty64(p: CriticParams, x: Float32Array): number {
  const l1 = addBiasLeaky(convForward(x, p.k1, G1), p.b1, G1);
  const l2 = addBiasLeaky(convForward(l1.h, p.k2, G2), p.b2, G2);
  // d(sum_b D(x_b))/d h2 = w for every sample
  const gA2 = new Float64Array(l2.h.length);
  for (let i = 0; i < gA2.length; i++) gA2[i] = p.w[i % FLAT] * l2.slope[i];
  const gH1 = convBackpropInput(gA2, p.k2, G2);
  for (let i = 0; i < gH1.length; i++) gH1[i] *= l1.slope[i];
  const gX = convBackpropInput(gH1, p.k1, G1);
  const per = gX.length / B;
  let gp = 0;
  for (let b = 0; b < B; b++) {
    let sq = 0;
    for (let i = 0; i < per; i++) sq += gX[b * per + i] ** 2;
    gp += (Math.sqrt(sq) - 1) ** 2;
  }
  return gp / B;
}

function finiteDifferenceGradients(p: CriticParams, x: Float32Array): Record<string, Float64Array> {
  const h = 1e-6;
  const out: Record<string, Float64Array> = {};
  for (const name of PARAM_NAMES) {
    const v = p[name];
    const g = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const keep = v[i];
      v[i] = keep + h;
      const up = gradientPenalty64(p, x);
      v[i] = keep - h;
      const down = gradientPenalty64(p, x);
      v[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    out[name] = g;
  }
  return out;
}

function makeParams(seed: number): CriticParams {
  const f64 = (n: number, s: number, scale: number) => Float64Array.from(randomValues(n, s), (v) => v * scale);
  return {
    k1: f64(3 * 3 * 1 * 4, seed, 0.8),
    b1: f64(4, seed + 1, 0.3),
    k2: f64(3 * 3 * 4 * 3, seed + 2, 0.5),
    b2: f64(3, seed + 3, 0.3),
    w: f64(FLAT, seed + 4, 0.7),
    c: f64(1, seed + 5, 0.1),
  };
}

/** Parameters the penalty depends on; biases only move the leaky-ReLU kinks, so their derivative is 0 a.e. */
const WEIGHT_NAMES = ['k1', 'k2', 'w'] as const;
const BIAS_NAMES = ['b1', 'b2', 'c'] as const;

/** ∂GP/∂θ in tfjs with raw ops: tf.grad inside tf.grads (second order through conv, leaky relu, matmul). */
function tfGradientsRaw(p: CriticParams, x: Float32Array): Record<string, Float32Array> {
  return tf.tidy(() => {
    const xs = tf.tensor4d(x, X_SHAPE as [number, number, number, number]);
    const b1 = tf.tensor1d(Float32Array.from(p.b1));
    const b2 = tf.tensor1d(Float32Array.from(p.b2));
    const c = tf.tensor1d(Float32Array.from(p.c));
    const params = [
      tf.tensor4d(Float32Array.from(p.k1), K1_SHAPE as [number, number, number, number]),
      tf.tensor4d(Float32Array.from(p.k2), K2_SHAPE as [number, number, number, number]),
      tf.tensor2d(Float32Array.from(p.w), [FLAT, 1]),
    ];
    const gp = (k1: tf.Tensor4D, k2: tf.Tensor4D, w: tf.Tensor2D) => {
      const critic = (input: tf.Tensor4D) => {
        const h1 = tf.leakyRelu(tf.add(tf.conv2d(input, k1, 2, 'same'), b1), ALPHA);
        const h2 = tf.leakyRelu(tf.add(tf.conv2d(h1 as tf.Tensor4D, k2, 2, 'same'), b2), ALPHA);
        return tf.add(tf.matMul(tf.reshape(h2, [B, FLAT]), w), c);
      };
      const g = tf.grad((input: tf.Tensor) => tf.sum(critic(input as tf.Tensor4D)))(xs);
      const norms = tf.sqrt(tf.sum(tf.square(g), [1, 2, 3]));
      return tf.mean(tf.square(tf.sub(norms, 1)));
    };
    const grads = tf.grads(gp as (...a: tf.Tensor[]) => tf.Tensor)(params);
    return Object.fromEntries(WEIGHT_NAMES.map((n, i) => [n, grads[i].dataSync() as Float32Array]));
  });
}

/** The same critic as a tfjs-layers model (fused conv/matmul kernels with custom gradients), via tf.variableGrads. */
function tfGradientsLayers(p: CriticParams, x: Float32Array): Record<string, Float32Array> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [7, 7, 1], filters: 4, kernelSize: 3, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: ALPHA }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: ALPHA }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1 }),
    ],
  });
  const values = [p.k1, p.b1, p.k2, p.b2, p.w, p.c];
  const initial = model.getWeights().map((wt, i) => tf.tensor(Float32Array.from(values[i]), wt.shape));
  model.setWeights(initial);
  tf.dispose(initial);
  const vars = model.trainableWeights.map((wt) => (wt as unknown as { val: tf.Variable }).val);
  const xs = tf.tensor4d(x, X_SHAPE as [number, number, number, number]);
  const { value, grads } = tf.variableGrads(() => {
    const g = tf.grad((input: tf.Tensor) => tf.sum(model.apply(input, { training: true }) as tf.Tensor))(xs);
    const norms = tf.sqrt(tf.sum(tf.square(g), [1, 2, 3]));
    return tf.mean(tf.square(tf.sub(norms, 1))) as tf.Scalar;
  }, vars);
  // Variables without a path to the penalty (the biases) get no entry, as in optimizer.computeGradients.
  const out = Object.fromEntries(
    PARAM_NAMES.filter((_, i) => grads[vars[i].name] != null).map((n) => [
      n,
      grads[vars[PARAM_NAMES.indexOf(n)].name].dataSync() as Float32Array,
    ]),
  );
  tf.dispose([xs, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

const SECOND_ORDER_TOLERANCE = 1e-4;

describe.each(['cpu', 'wasm'] as const)('second-order gradients on %s', (backend) => {
  const x = randomValues(B * 7 * 7, 77);
  const params = makeParams(5);
  const fd = finiteDifferenceGradients(params, x);

  beforeAll(async () => {
    // Two threads whatever the machine's load, so the threaded wasm build is what these tests check.
    await useBackend(backend, { quiet: true, threads: 2 });
  });

  it('the finite-difference reference is not trivial', () => {
    for (const name of ['k1', 'k2', 'w'] as const) {
      expect(Math.max(...fd[name].map(Math.abs))).toBeGreaterThan(1e-2);
    }
    // Biases only move kinks (or, for the output bias, nothing): the penalty does not depend on them.
    for (const name of BIAS_NAMES) expect(Math.max(...fd[name].map(Math.abs))).toBeLessThan(1e-8);
  });

  it('gradient penalty gradients (raw ops) equal central finite differences', async () => {
    await tf.setBackend(backend);
    const got = tfGradientsRaw(params, x);
    for (const name of WEIGHT_NAMES) {
      expect(relativeError(got[name], fd[name]), name).toBeLessThan(SECOND_ORDER_TOLERANCE);
    }
  });

  it('gradient penalty gradients through a tfjs-layers critic (fused kernels) equal finite differences', async () => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const got = tfGradientsLayers(params, x);
    for (const name of WEIGHT_NAMES) {
      expect(relativeError(got[name], fd[name]), name).toBeLessThan(SECOND_ORDER_TOLERANCE);
    }
    for (const name of BIAS_NAMES) if (got[name]) expect(Math.max(...got[name].map(Math.abs))).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('Conv2DBackpropFilter has the gradient of a bilinear map', async () => {
    await tf.setBackend(backend);
    const g = geometry([2, 6, 5, 3], [3, 2, 3, 4], [2, 1], 'same');
    const xv = randomValues(2 * 6 * 5 * 3, 1);
    const dyv = randomValues(2 * g.OH * g.OW * 4, 2);
    const rv = randomValues(3 * 2 * 3 * 4, 3);
    const [gx, gdy] = tf.tidy(() => {
      const r = tf.tensor4d(rv, [3, 2, 3, 4]);
      const f = (x: tf.Tensor, dy: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
              strides: [2, 1],
              pad: 'same',
              dataFormat: 'NHWC',
              filterShape: [3, 2, 3, 4],
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
            r,
          ),
        );
      return tf.grads(f)([tf.tensor4d(xv, [2, 6, 5, 3]), tf.tensor4d(dyv, [2, g.OH, g.OW, 4])]).map((t) => t.dataSync());
    });
    expect(relativeError(gx, convBackpropInput(dyv, rv, g))).toBeLessThan(1e-5);
    expect(relativeError(gdy, convForward(xv, rv, g))).toBeLessThan(1e-5);
  });

  it('comparison ops have zero gradients shaped like their (broadcast) inputs', async () => {
    await tf.setBackend(backend);
    const xv = [0.5, -1, 2, 0.1, 3, -2, 0.7, 1.5, -0.3, 0.2, 0.9, -0.8];
    const second = tf.tidy(() => {
      const x = tf.tensor2d(xv, [3, 4]);
      // mask compares x with its column means: both sides depend on x, and they broadcast
      const inner = (t: tf.Tensor) => tf.sum(tf.mul(tf.square(t), tf.cast(tf.greater(t, tf.mean(t, 0)), 'float32')));
      return tf.grad((t: tf.Tensor) => tf.sum(tf.grad(inner)(t)))(x).dataSync();
    });
    const means = [0, 1, 2, 3].map((j) => (xv[j] + xv[4 + j] + xv[8 + j]) / 3);
    expect(Array.from(second)).toEqual(xv.map((v, i) => (v > means[i % 4] ? 2 : 0)));
  });
});

describe('useBackend', () => {
  it('selects cpu and wasm, says which in one line, and registers Gantry kernels', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const cpu = await useBackend('cpu');
      expect(cpu.name).toBe('cpu');
      expect(tf.getBackend()).toBe('cpu');
      const wasm = await useBackend('wasm');
      expect(wasm.name).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(wasm.detail).toMatch(/XNNPACK, SIMD, \d+ threads?/);
      expect(wasm.detail).toMatch(/Conv2DBackpropFilter/);
      expect(log).toHaveBeenCalledTimes(2);
      expect(String(log.mock.calls[1][0])).toMatch(/^gantry: backend wasm \(.*\)$/);
      expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
    } finally {
      log.mockRestore();
    }
  });

  it('auto picks an accelerated backend before cpu', async () => {
    const choice = await useBackend('auto', { quiet: true });
    expect(['tensorflow', 'webgpu', 'wasm']).toContain(choice.name);
    if (!nativeTensorflowInstalled() && !canResolve('webgpu')) {
      expect(choice.name).toBe('wasm');
    } else if (nativeTensorflowInstalled()) {
      expect(choice.name).toBe('tensorflow');
    }
  });

  it('rejects unknown names and a missing tfjs-node with one clear line', async () => {
    await expect(useBackend('gpu' as never, { quiet: true })).rejects.toThrow(GantryError);
    await expect(useBackend('wasm', { quiet: true, threads: 0 })).rejects.toThrow(/threads/);
    await expect(useBackend('wasm', { quiet: true, xla: true })).rejects.toThrow(
      'useBackend: xla compiles TensorFlow graphs and needs the tensorflow backend, not wasm',
    );
    if (!nativeTensorflowInstalled()) {
      const err = await useBackend('tensorflow', { quiet: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GantryError);
      expect((err as Error).message).toMatch(/gantry setup tensorflow/);
      expect((err as Error).message).not.toMatch(/\n/);
    }
  });
});

describe('reference models and bench', () => {
  beforeAll(async () => {
    await useBackend('wasm', { quiet: true });
  });

  it('builds the DCGAN-MNIST reference G and D with the documented shapes', () => {
    const G = referenceGenerator();
    const D = referenceDiscriminator();
    // dense 100→6272 (+bias), deconv 4·4·64·128+64, batchnorm γ β, deconv 4·4·1·64+1
    expect(G.countParams()).toBe(100 * 6272 + 6272 + (16 * 64 * 128 + 64) + 4 * 64 + (16 * 64 + 1));
    // conv 16·1·64+64, conv 16·64·128+128, dense 6272+1
    expect(D.countParams()).toBe(16 * 64 + 64 + (16 * 64 * 128 + 128) + 6273);
    expect(G.outputs[0].shape).toEqual([null, 28, 28, 1]);
    expect(D.outputs[0].shape).toEqual([null, 1]);
    G.dispose();
    D.dispose();
  });

  it('counts conv and matmul FLOPs from kernel shapes', () => {
    // forward conv 14x14x64 → 7x7x128, k4: 2 · (64·7·7·128) · (4·4·64)
    const conv = 2 * 64 * 7 * 7 * 128 * 16 * 64;
    expect(kernelFlops('Conv2D', [[64, 14, 14, 64], [4, 4, 64, 128]], [[64, 7, 7, 128]])).toBe(conv);
    expect(kernelFlops('Conv2DBackpropInput', [[64, 7, 7, 128], [4, 4, 64, 128]], [[64, 14, 14, 64]])).toBe(conv);
    expect(kernelFlops('Conv2DBackpropFilter', [[64, 14, 14, 64], [64, 7, 7, 128]], [[4, 4, 64, 128]])).toBe(conv);
    expect(kernelFlops('BatchMatMul', [[1, 100, 64], [1, 64, 6272]], [[1, 100, 6272]])).toBe(2 * 100 * 6272 * 64);
    expect(kernelFlops('Add', [[3], [3]], [[3]])).toBe(0);
  });

  it('runs both losses, reports JSON-ready numbers and a kernel profile, and leaks no tensors', async () => {
    const results: BenchResult[] = [];
    const before = tf.memory().numTensors;
    await runBench({ backend: 'wasm', batch: 2, warmup: 0, steps: 1, profile: true, onResult: (r) => results.push(r) });
    expect(tf.memory().numTensors).toBe(before);
    expect(results.map((r) => r.loss)).toEqual(['non-saturating', 'wgan-gp']);
    for (const r of results) {
      expect(r).toMatchObject({ backend: 'wasm', batch: 2, steps: 1 });
      expect(r.ms_per_step).toBeGreaterThan(0);
      expect(r.gflops).toBeGreaterThan(0);
      expect(JSON.parse(JSON.stringify(r))).toEqual(r);
      const names = r.profile!.map((row) => row.kernel);
      expect(names).toContain('Conv2DBackpropFilter');
      expect(names).toContain('Conv2DBackpropInput');
    }
    // Exactly the convolutions and matrix products a step needs, none computed and thrown away (ENGINE.md, "wasm: the
    // ceiling"; `scripts/op-tally.ts --backend wasm --convs` lists them). Per step, counted from the models:
    // non-saturating: G forward twice (dense + 2 deconvs = Conv2DBackpropInput), D forward on real, fake and (G step)
    // fake; D step: per D pass the dense input and weight gradients, conv2's input gradient and both filter gradients;
    // G step: D's dense and both conv input gradients (to reach G), G's two deconv input gradients (Conv2D), filter
    // gradients and the dense weight gradient. WGAN-GP adds D on the interpolates, the penalty's inner input gradients
    // (dense, conv2, conv1) and their derivatives by D's weights (2 filter gradients, 2 Conv2D, 1 dense).
    const counts = (r: BenchResult) => Object.fromEntries(r.profile!.filter((row) => HEAVY.includes(row.kernel)).map((row) => [row.kernel, row.count]));
    const HEAVY = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', '_FusedMatMul'];
    expect(counts(results[0])).toEqual({ FusedConv2D: 6, Conv2D: 2, Conv2DBackpropInput: 8, Conv2DBackpropFilter: 6, _FusedMatMul: 5, BatchMatMul: 6 });
    expect(counts(results[1])).toEqual({ FusedConv2D: 8, Conv2D: 4, Conv2DBackpropInput: 10, Conv2DBackpropFilter: 8, _FusedMatMul: 6, BatchMatMul: 8 });
    // FLOPs per sample of one pass of each layer (every kind of pass of a layer costs the same), times the passes above.
    const gDense = 2 * 100 * 6272;
    const conv2 = 2 * 7 * 7 * 128 * 16 * 64;
    const conv1 = 2 * 14 * 14 * 64 * 16;
    const dDense = 2 * 6272;
    const batch = 2;
    expect(results[0].gflop_per_step).toBeCloseTo((batch * (3 * gDense + 12 * conv2 + 10 * conv1 + 8 * dDense)) / 1e9, 3);
    expect(results[1].gflop_per_step).toBeCloseTo((batch * (3 * gDense + 16 * conv2 + 14 * conv1 + 11 * dDense)) / 1e9, 3);
  });
});
