import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../src/index.js';
import { conv2dBackpropFilter, conv2dBackpropInput, type ConvGradMethod } from '../src/conv-kernels.js';
import { withRunner } from '../src/kernel-runner.js';
import {
  convBackpropFilter,
  convBackpropInput,
  geometry,
  randomValues,
  relativeError,
  type Pad,
} from './kernels-reference.js';

const TOLERANCE = 1e-4;

interface ConvCase {
  B: number;
  H: number;
  W: number;
  Ci: number;
  Co: number;
  KH: number;
  KW: number;
  strides: [number, number];
  pad: Pad;
}

/** Strides 1–3 (and unequal), kernels 1–5 (and non-square), same/valid/explicit padding, odd sizes, batch 1 and 3. */
function convCases(): ConvCase[] {
  const strides: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 3],
    [2, 1],
    [1, 3],
  ];
  const kernels: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 5],
    [2, 5],
  ];
  const pads: Pad[] = [
    'same',
    'valid',
    [
      [0, 0],
      [1, 2],
      [0, 3],
      [0, 0],
    ],
    [
      [0, 0],
      [3, 0],
      [2, 2],
      [0, 0],
    ],
  ];
  const cases: ConvCase[] = [];
  let n = 0;
  for (const s of strides)
    for (const [KH, KW] of kernels)
      for (const pad of pads) {
        n++;
        const c: ConvCase = {
          B: n % 2 === 0 ? 1 : 3,
          H: 5 + (n % 5) * 2, // odd heights 5..13
          W: 6 + (n % 4), // 6..9
          Ci: [1, 2, 3, 9][n % 4], // 9 channels push most patches past the columns threshold
          Co: 1 + ((n * 7) % 4),
          KH,
          KW,
          strides: s,
          pad,
        };
        const g = geometry([c.B, c.H, c.W, c.Ci], [KH, KW, c.Ci, c.Co], s, pad);
        if (g.OH > 0 && g.OW > 0) cases.push(c);
      }
  return cases;
}

const CASES = convCases();

function backpropFilter(x: tf.Tensor, dy: tf.Tensor, c: ConvCase): tf.Tensor {
  return tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
    strides: c.strides,
    pad: c.pad,
    dataFormat: 'NHWC',
    filterShape: [c.KH, c.KW, c.Ci, c.Co],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function backpropInput(dy: tf.Tensor, filter: tf.Tensor, c: ConvCase): tf.Tensor {
  return tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, {
    strides: c.strides,
    pad: c.pad,
    dataFormat: 'NHWC',
    inputShape: [c.B, c.H, c.W, c.Ci],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Runs one composite with a forced method, below the registry (the registry's choice is 'auto'). */
function composite(kind: 'filter' | 'input', method: ConvGradMethod, a: tf.Tensor, b: tf.Tensor, c: ConvCase): tf.Tensor {
  const engine = tf.engine();
  const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC' as const };
  const info = withRunner(engine.backend, engine.backendName, (r) =>
    kind === 'filter'
      ? conv2dBackpropFilter(r, a, b, { ...attrs, filterShape: [c.KH, c.KW, c.Ci, c.Co] }, method)
      : conv2dBackpropInput(r, a, b, { ...attrs, inputShape: [c.B, c.H, c.W, c.Ci] }, method),
  );
  return engine.makeTensorFromTensorInfo(info);
}

const METHODS = ['registered', 'conv', 'columns'] as const;

function caseName(c: ConvCase): string {
  const pad = typeof c.pad === 'string' ? c.pad : `explicit${JSON.stringify([c.pad[1], c.pad[2]])}`;
  return `B${c.B} ${c.H}x${c.W}x${c.Ci}->${c.Co} k${c.KH}x${c.KW} s${c.strides.join('x')} ${pad}`;
}

function dataIds(): number {
  return tf.engine().backend.numDataIds();
}

describe.each(['cpu', 'wasm'] as const)('Gantry kernels on %s', (backend) => {
  beforeAll(async () => {
    // Two threads whatever the machine's load, so the threaded wasm build is what these tests check.
    await useBackend(backend, { quiet: true, threads: 2 });
  });

  it.each(METHODS)(`Conv2DBackpropFilter (%s) equals a float64 direct loop on ${CASES.length} geometries`, async (method) => {
    await tf.setBackend(backend);
    const failures: string[] = [];
    CASES.forEach((c, i) => {
      const g = geometry([c.B, c.H, c.W, c.Ci], [c.KH, c.KW, c.Ci, c.Co], c.strides, c.pad);
      const xv = randomValues(c.B * c.H * c.W * c.Ci, 100 + i);
      const dyv = randomValues(c.B * g.OH * g.OW * c.Co, 200 + i);
      const ref = convBackpropFilter(xv, dyv, g);
      const got = tf.tidy(() => {
        const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.Ci]);
        const dy = tf.tensor4d(dyv, [c.B, g.OH, g.OW, c.Co]);
        return (method === 'registered' ? backpropFilter(x, dy, c) : composite('filter', method, x, dy, c)).dataSync();
      });
      const err = relativeError(got, ref);
      if (!(err <= TOLERANCE)) failures.push(`${caseName(c)}: ${err}`);
    });
    expect(failures).toEqual([]);
  });

  it.each(METHODS)(`Conv2DBackpropInput (%s) equals a float64 direct loop on ${CASES.length} geometries`, async (method) => {
    await tf.setBackend(backend);
    const failures: string[] = [];
    CASES.forEach((c, i) => {
      const g = geometry([c.B, c.H, c.W, c.Ci], [c.KH, c.KW, c.Ci, c.Co], c.strides, c.pad);
      const wv = randomValues(c.KH * c.KW * c.Ci * c.Co, 300 + i);
      const dyv = randomValues(c.B * g.OH * g.OW * c.Co, 400 + i);
      const ref = convBackpropInput(dyv, wv, g);
      const got = tf.tidy(() => {
        const dy = tf.tensor4d(dyv, [c.B, g.OH, g.OW, c.Co]);
        const w = tf.tensor4d(wv, [c.KH, c.KW, c.Ci, c.Co]);
        return (method === 'registered' ? backpropInput(dy, w, c) : composite('input', method, dy, w, c)).dataSync();
      });
      const err = relativeError(got, ref);
      if (!(err <= TOLERANCE)) failures.push(`${caseName(c)}: ${err}`);
    });
    expect(failures).toEqual([]);
  });

  it.runIf(backend === 'wasm')('runs on the threaded wasm build with the requested threads', async () => {
    const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
    expect(getThreadsCount()).toBe(2);
  });

  it('handles NCHW data format by transposing to NHWC', async () => {
    await tf.setBackend(backend);
    const c: ConvCase = { B: 2, H: 9, W: 7, Ci: 3, Co: 4, KH: 3, KW: 2, strides: [2, 3], pad: 'same' };
    const g = geometry([c.B, c.H, c.W, c.Ci], [c.KH, c.KW, c.Ci, c.Co], c.strides, c.pad);
    const xv = randomValues(c.B * c.H * c.W * c.Ci, 11);
    const wv = randomValues(c.KH * c.KW * c.Ci * c.Co, 12);
    const dyv = randomValues(c.B * g.OH * g.OW * c.Co, 13);
    const [dwNchw, dxNchw] = tf.tidy(() => {
      const toNchw = (v: Float32Array, shape: number[]) => tf.transpose(tf.tensor4d(v, shape as never), [0, 3, 1, 2]);
      const x = toNchw(xv, [c.B, c.H, c.W, c.Ci]);
      const dy = toNchw(dyv, [c.B, g.OH, g.OW, c.Co]);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NCHW' };
      const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
        ...attrs,
        filterShape: [c.KH, c.KW, c.Ci, c.Co],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: tf.tensor4d(wv, [c.KH, c.KW, c.Ci, c.Co]) }, {
        ...attrs,
        inputShape: [c.B, c.Ci, c.H, c.W],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return [dw.dataSync(), tf.transpose(dx, [0, 2, 3, 1]).dataSync()];
    });
    expect(relativeError(dwNchw, convBackpropFilter(xv, dyv, g))).toBeLessThan(TOLERANCE);
    expect(relativeError(dxNchw, convBackpropInput(dyv, wv, g))).toBeLessThan(TOLERANCE);
  });

  it('matrix products with transposes, batches and broadcasting equal a float64 loop', async () => {
    await tf.setBackend(backend);
    const shapes: [number[], number[], boolean, boolean][] = [
      [[64, 6272], [64, 1], true, false], // dense weight gradient of a 1-unit head (matrix-vector)
      [[70, 33], [70, 129], true, false],
      [[45, 70], [129, 70], false, true],
      [[70, 45], [129, 70], true, true],
      [[3, 40, 50], [3, 50, 60], false, false], // batched
      [[3, 50, 40], [1, 50, 60], true, false], // broadcast b
      [[2, 3, 40, 50], [60, 50], false, true], // rank 4 against rank 2
    ];
    shapes.forEach(([as, bs, ta, tb], i) => {
      const av = randomValues(as.reduce((p, d) => p * d, 1), 500 + i);
      const bv = randomValues(bs.reduce((p, d) => p * d, 1), 600 + i);
      const got = tf.tidy(() => tf.matMul(tf.tensor(av, as), tf.tensor(bv, bs), ta, tb));
      const ref = referenceMatMul(av, as, bv, bs, ta, tb);
      expect(got.shape).toEqual(ref.shape);
      expect(relativeError(got.dataSync(), ref.values)).toBeLessThan(TOLERANCE);
      got.dispose();
    });
  });

  it('one buffer used as the B operand under two shapes gives both right products', async () => {
    await tf.setBackend(backend);
    // wasm caches an XNNPACK operator per B buffer without its shape; a reshape shares the buffer.
    const wv = randomValues(24, 31);
    const av = randomValues(2 * 6, 32);
    const cv = randomValues(3 * 8, 33);
    const w = tf.tensor2d(wv, [6, 4]);
    const first = tf.matMul(tf.tensor2d(av, [2, 6]), w);
    const second = tf.matMul(tf.tensor2d(cv, [3, 8]), tf.reshape(w, [8, 3]));
    expect(relativeError(first.dataSync(), referenceMatMul(av, [2, 6], wv, [6, 4], false, false).values)).toBeLessThan(1e-6);
    expect(relativeError(second.dataSync(), referenceMatMul(cv, [3, 8], wv, [8, 3], false, false).values)).toBeLessThan(1e-6);
    tf.dispose([w, first, second]);
  });

  it('Sum and Mean of a batch-norm-sized tensor over the batch and spatial axes equal a float64 reduction', async () => {
    await tf.setBackend(backend);
    // wasm: an average pooling with a 12544-row window (the reference model's batch-norm moments and bias gradients).
    const shape: [number, number, number, number] = [64, 14, 14, 8];
    const v = Float32Array.from(randomValues(64 * 14 * 14 * 8, 77), (a) => a + 2); // offset: the means are far from 0
    const x = tf.tensor4d(v, shape);
    for (const axes of [[0, 1, 2], [1, 2]]) {
      const outShape = axes.length === 3 ? [8] : [64, 8];
      const ref = new Float64Array(outShape.reduce((p, d) => p * d, 1));
      const count = axes.length === 3 ? 64 * 14 * 14 : 14 * 14;
      v.forEach((a, flat) => (ref[axes.length === 3 ? flat % 8 : Math.floor(flat / (14 * 14 * 8)) * 8 + (flat % 8)] += a));
      const sum = tf.sum(x, axes);
      const mean = tf.mean(x, axes, true);
      expect(sum.shape).toEqual(outShape);
      expect(mean.shape).toEqual(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
      // float32 accumulation of 12544 terms: wasm's own kernel (a sequential float32 sum) is off by 2.6e-6 over
      // [0, 1, 2] and 5.8e-7 over [1, 2] here; the pooled sums by 3.3e-6 and 4.0e-7.
      expect(relativeError(sum.dataSync(), ref)).toBeLessThan(1e-5);
      expect(relativeError(mean.dataSync(), ref.map((a) => a / count))).toBeLessThan(1e-5);
      tf.dispose([sum, mean]);
    }
    x.dispose();
  });

  it('batch normalization with per-channel statistics equals a float64 reference, with and without offset and scale', async () => {
    await tf.setBackend(backend);
    const shape: [number, number, number, number] = [4, 5, 3, 6];
    const v = randomValues(4 * 5 * 3 * 6, 81);
    const stats = (seed: number, lo: number) => Float32Array.from(randomValues(6, seed), (a) => lo + Math.abs(a));
    const [mv, vv, ov, sv] = [randomValues(6, 82), stats(83, 0.1), randomValues(6, 84), stats(85, 0.5)];
    const eps = 1e-3;
    for (const withAffine of [true, false]) {
      const ref = Float64Array.from(v, (a, i) => {
        const c = i % 6;
        const normalized = (a - mv[c]) / Math.sqrt(vv[c] + Math.fround(eps));
        return withAffine ? ov[c] + normalized * sv[c] : normalized;
      });
      const y = tf.tidy(() =>
        tf.batchNorm(
          tf.tensor4d(v, shape),
          tf.tensor1d(mv),
          tf.tensor1d(vv),
          withAffine ? tf.tensor1d(ov) : undefined,
          withAffine ? tf.tensor1d(sv) : undefined,
          eps,
        ),
      );
      expect(y.shape).toEqual(shape);
      expect(relativeError(y.dataSync(), ref)).toBeLessThan(1e-6);
      y.dispose();
    }
  });

  it('Tile, Identity and Cast keep values and dtypes', async () => {
    await tf.setBackend(backend);
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const tiled = tf.tile(x, [2, 3, 1]);
    // [1,2,3] tiled [2,3,1]: the 2×3 block repeated 3 times down, the result twice.
    const block = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6];
    const expected = [...block, ...block];
    expect(tiled.shape).toEqual([2, 6, 3]);
    expect(Array.from(tiled.dataSync())).toEqual(expected);
    // Several tiled axes, the batch-norm gradient's case (a [1,1,1,C] scale over [B,H,W,1]) and an inner axis.
    const scale = tf.tensor4d([1, 2, 3], [1, 1, 1, 3]);
    expect(Array.from(tf.tile(scale, [2, 2, 1, 1]).dataSync())).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    const inner = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    expect(Array.from(tf.tile(inner, [2, 2]).dataSync())).toEqual([1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4]);
    tf.dispose([scale, inner]);
    expect(Array.from(tf.tile(tf.tensor1d([1, 2], 'int32'), [3]).dataSync())).toEqual([1, 2, 1, 2, 1, 2]);
    expect(Array.from(tf.tile(tf.tensor2d([true, false], [2, 1], 'bool'), [1, 2]).dataSync())).toEqual([1, 1, 0, 0]);
    const clone = tf.clone(tiled);
    const sameCast = tf.cast(tiled, 'float32');
    tiled.dispose();
    // A shared buffer outlives the original's disposal.
    expect(Array.from(clone.dataSync())).toEqual(expected);
    expect(Array.from(sameCast.dataSync())).toEqual(expected);
    // Casts that change the dtype still convert.
    const ints = tf.cast(tf.tensor1d([1.7, -2.2, 0]), 'int32');
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.dataSync())).toEqual([1, -2, 0]);
    tf.dispose([x, clone, sameCast, ints]);
  });

  it('Tile equals an index formula on random shapes and repeats, including long repeats of short blocks', async () => {
    await tf.setBackend(backend);
    const failures: string[] = [];
    // Includes the gradient penalty's [64,1] → [64,784]-style case: a one-value block repeated many times.
    const cases: [number[], number[]][] = [
      [[3, 1], [1, 37]],
      [[2, 3], [5, 1]],
      [[1, 2, 1], [3, 1, 11]],
    ];
    const draws = randomValues(320, 5).map((v) => (v + 1) / 2);
    let next = 0;
    for (let i = 0; i < 40; i++) {
      const rank = 1 + (i % 4);
      cases.push([
        Array.from({ length: rank }, () => 1 + Math.floor(draws[next++] * 4)),
        Array.from({ length: rank }, () => 1 + Math.floor(draws[next++] * 9)),
      ]);
    }
    for (const [shape, reps] of cases) {
      const size = shape.reduce((p, d) => p * d, 1);
      const values = Float32Array.from({ length: size }, (_, k) => k + 1);
      const outShape = shape.map((d, a) => d * reps[a]);
      const expected = Array.from({ length: outShape.reduce((p, d) => p * d, 1) }, (_, flat) => {
        // The source index of each output element: every coordinate modulo the input's extent.
        let rest = flat;
        let source = 0;
        let stride = 1;
        const coords = outShape.map(() => 0);
        for (let a = outShape.length - 1; a >= 0; a--) {
          coords[a] = rest % outShape[a];
          rest = Math.floor(rest / outShape[a]);
        }
        for (let a = shape.length - 1; a >= 0; a--) {
          source += (coords[a] % shape[a]) * stride;
          stride *= shape[a];
        }
        return values[source];
      });
      const got = tf.tidy(() => Array.from(tf.tile(tf.tensor(values, shape), reps).dataSync()));
      if (got.join() !== expected.join()) failures.push(`${JSON.stringify(shape)} x ${JSON.stringify(reps)}`);
    }
    expect(failures).toEqual([]);
  });

  it('LeakyRelu, and Sum and Mean over any axes, equal float64 references over any axes equal a float64 reduction', async () => {
    await tf.setBackend(backend);
    const shape = [3, 5, 4, 6];
    const v = randomValues(3 * 5 * 4 * 6, 21);
    const x = tf.tensor4d(v, shape as [number, number, number, number]);
    const lrelu = tf.leakyRelu(x, 0.2);
    // float32 rounding of α·x: at most one unit in the last place from the float64 product
    expect(relativeError(lrelu.dataSync(), Float64Array.from(v, (a) => (a > 0 ? a : a * 0.2)))).toBeLessThan(1e-7);
    // wasm: exactly the float32 product of x and float32(α), as its stock kernel and the earlier x·step(x, α) gave
    // (cpu multiplies by the float64 α before rounding)
    if (backend === 'wasm') {
      expect(Array.from(lrelu.dataSync())).toEqual(Array.from(v, (a) => (a > 0 ? a : Math.fround(a * Math.fround(0.2)))));
    }
    const axesCases: (number[] | null)[] = [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [1, 2, 3], [2], [3, 1], null];
    for (const axes of axesCases) {
      for (const keepDims of [false, true]) {
        const reduceAxes = axes ?? [0, 1, 2, 3];
        const outShape = shape.map((d, i) => (reduceAxes.includes(i) ? 1 : d));
        const ref = new Float64Array(outShape.reduce((p, d) => p * d, 1));
        v.forEach((a, flat) => {
          const idx = [flat / 120, (flat / 24) % 5, (flat / 6) % 4, flat % 6].map(Math.floor);
          const o = idx.reduce((acc, ix, i) => acc * outShape[i] + (reduceAxes.includes(i) ? 0 : ix), 0);
          ref[o] += a;
        });
        const count = reduceAxes.reduce((p, i) => p * shape[i], 1);
        const sum = tf.sum(x, axes ?? undefined, keepDims);
        const mean = tf.mean(x, axes ?? undefined, keepDims);
        const expectedShape = keepDims ? outShape : shape.filter((_, i) => !reduceAxes.includes(i));
        expect(sum.shape).toEqual(expectedShape);
        expect(mean.shape).toEqual(expectedShape);
        expect(relativeError(sum.dataSync(), ref)).toBeLessThan(1e-6);
        expect(relativeError(mean.dataSync(), ref.map((a) => a / count))).toBeLessThan(1e-6);
        tf.dispose([sum, mean]);
      }
    }
    const ints = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const intSum = tf.sum(ints, 0);
    expect(intSum.dtype).toBe('int32');
    expect(Array.from(intSum.dataSync())).toEqual([9, 12]);
    tf.dispose([x, lrelu, ints, intSum]);
  });

  it('releases every intermediate: tensor and backend buffer counts stay flat', async () => {
    await tf.setBackend(backend);
    const c: ConvCase = { B: 2, H: 9, W: 9, Ci: 3, Co: 5, KH: 4, KW: 4, strides: [2, 2], pad: 'same' };
    const g = geometry([c.B, c.H, c.W, c.Ci], [c.KH, c.KW, c.Ci, c.Co], c.strides, c.pad);
    const x = tf.tensor4d(randomValues(c.B * c.H * c.W * c.Ci, 1), [c.B, c.H, c.W, c.Ci]);
    const w = tf.tensor4d(randomValues(c.KH * c.KW * c.Ci * c.Co, 2), [c.KH, c.KW, c.Ci, c.Co]);
    const dy = tf.tensor4d(randomValues(c.B * g.OH * g.OW * c.Co, 3), [c.B, g.OH, g.OW, c.Co]);
    const round = () => {
      tf.dispose([
        backpropFilter(x, dy, c),
        backpropInput(dy, w, c),
        tf.matMul(tf.reshape(x, [c.B * c.H, c.W * c.Ci]), tf.reshape(x, [c.B * c.H, c.W * c.Ci]), true, false),
        tf.leakyRelu(x, 0.2),
        tf.sum(x, [0, 1, 2]),
        tf.mean(x, [0, 1]),
        tf.batchNorm(x, tf.mean(x, [0, 1, 2]), tf.add(tf.mean(x, [0, 1, 2]), 1), undefined, tf.ones([c.Ci])),
        tf.tile(x, [1, 2, 1, 1]),
      ]);
    };
    round();
    const tensors = tf.memory().numTensors;
    const buffers = dataIds();
    for (let i = 0; i < 5; i++) tf.tidy(round);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(dataIds()).toBe(buffers);
    tf.dispose([x, w, dy]);
  });
});

function referenceMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  ta: boolean,
  tb: boolean,
): { values: Float64Array; shape: number[] } {
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const M = ta ? ac : ar;
  const K = ta ? ar : ac;
  const N = tb ? br : bc;
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = outerA.length >= outerB.length ? outerA : outerB;
  const batch = outer.reduce((p, d) => p * d, 1);
  const batchA = outerA.reduce((p, d) => p * d, 1);
  const batchB = outerB.reduce((p, d) => p * d, 1);
  const out = new Float64Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    const ao = (batchA === 1 ? 0 : t) * ar * ac;
    const bo = (batchB === 1 ? 0 : t) * br * bc;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = ta ? a[ao + k * ac + i] : a[ao + i * ac + k];
          const bv = tb ? b[bo + j * bc + k] : b[bo + k * bc + j];
          s += av * bv;
        }
        out[(t * M + i) * N + j] = s;
      }
  }
  return { values: out, shape: [...outer, M, N] };
}
