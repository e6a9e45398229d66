import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { useBackend } from '../src/index.js';
import { withRunner } from '../src/kernel-runner.js';
import { sleb, uleb } from '../src/wasm-simd/assembler.js';
import { TILE_ROWS, convModuleBytes } from '../src/wasm-simd/conv-module.js';
import {
  INDIRECTION_CACHE_SIZE,
  SimdConv,
  activeSimdConv,
  callingThreadOnly,
  convShape,
  instantiateConvModule,
  rowShares,
  setActiveSimdConv,
  wasmConvolution,
} from '../src/wasm-simd/simd-conv.js';
import { startHelpers } from '../src/wasm-simd/simd-conv-node.js';
import { convBackpropFilter, convBackpropInput, convForward, geometry, randomValues, relativeError, type Pad } from './kernels-reference.js';

/** float32 FMA chains over up to ~1000 terms against float64 sums. */
const TOLERANCE = 2e-6;

interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
  dilations?: [number, number];
}

/**
 * Strides 1–3 and unequal, kernels 1×1 to 5×5 and non-square, same/valid/explicit padding, dilation, output rows not a
 * multiple of the 4-row tile and across the 64-row cache blocks, one to three 8-channel panels, channels 8–40.
 */
const CASES: Case[] = [
  { x: [2, 14, 14, 16], filter: [4, 4, 16, 16], strides: [2, 2], pad: 'same' },
  { x: [1, 7, 9, 8], filter: [3, 3, 8, 8], strides: [1, 1], pad: 'same' },
  { x: [3, 11, 5, 24], filter: [2, 5, 24, 24], strides: [2, 1], pad: 'valid' },
  { x: [1, 13, 13, 8], filter: [5, 5, 8, 16], strides: [3, 3], pad: 'same' },
  { x: [2, 9, 10, 12], filter: [3, 2, 12, 8], strides: [1, 2], pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
  { x: [1, 17, 17, 8], filter: [3, 3, 8, 16], strides: [1, 1], pad: 'valid', dilations: [2, 2] },
  { x: [2, 12, 12, 40], filter: [1, 1, 40, 24], strides: [1, 1], pad: 'same' },
  { x: [5, 7, 7, 16], filter: [2, 2, 16, 8], strides: [1, 1], pad: 'same' },
  { x: [1, 10, 10, 8], filter: [3, 3, 8, 8], strides: [1, 1], pad: 'same', dilations: [1, 3] },
];

const name = (c: Case): string =>
  `x${c.x.join('x')} w${c.filter.join('x')} s${c.strides.join('x')} ${typeof c.pad === 'string' ? c.pad : 'explicit'}${c.dilations ? ` d${c.dilations.join('x')}` : ''}`;

const attrsOf = (c: Case): tf.Conv2DAttrs => ({
  strides: c.strides,
  pad: c.pad as tf.Conv2DAttrs['pad'],
  dataFormat: 'NHWC',
  dilations: c.dilations ?? [1, 1],
});

/** The FMA convolution called directly (whatever its size), with an optional bias. */
function runDirect(conv: SimdConv, x: tf.Tensor, filter: tf.Tensor, c: Case, bias?: tf.Tensor): Float32Array {
  const s = convShape(x, filter, attrsOf(c))!;
  const info = withRunner(tf.backend(), 'wasm', (r) => conv.run(r, s, x, filter, bias));
  const y = tf.engine().makeTensorFromTensorInfo(info);
  const values = y.dataSync() as Float32Array;
  y.dispose();
  return values;
}

describe('wasm FMA convolution (relaxed SIMD, assembled at run time)', () => {
  let conv: SimdConv;

  beforeAll(async () => {
    await useBackend('wasm', { quiet: true, threads: 2 });
    const active = activeSimdConv();
    // Node 20 has relaxed SIMD behind a flag that the engine sets; a Node without it would leave the stock conv.
    expect(active).not.toBeNull();
    conv = active!;
  });

  it('encodes LEB128 integers as the WebAssembly spec does', () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(WebAssembly.validate(convModuleBytes({ shared: true, maximumPages: 65536 }))).toBe(true);
    expect(WebAssembly.validate(convModuleBytes({ shared: false }))).toBe(true);
  });

  it('splits rows into whole tiles that cover every row once', () => {
    for (const [rows, threads] of [
      [3136, 2],
      [1024, 3],
      [13, 2],
      [3, 2],
      [1, 4],
      [401, 8],
    ]) {
      const shares = rowShares(rows, threads);
      expect(shares[0][0]).toBe(0);
      expect(shares.at(-1)![1]).toBe(rows);
      for (let i = 1; i < shares.length; i++) expect(shares[i][0]).toBe(shares[i - 1][1]);
      for (const [begin] of shares) expect(begin % TILE_ROWS).toBe(0);
      expect(shares.length).toBe(Math.min(threads, Math.ceil(rows / TILE_ROWS)));
    }
  });

  it(`equals a float64 direct loop on ${CASES.length} geometries, with and without a bias`, () => {
    const failures: string[] = [];
    CASES.forEach((c, i) => {
      const g = geometry(c.x, c.filter, c.strides, c.pad, c.dilations);
      const xv = randomValues(c.x.reduce((p, d) => p * d, 1), 10 + i);
      const wv = randomValues(c.filter.reduce((p, d) => p * d, 1), 20 + i);
      const bv = randomValues(g.Co, 30 + i);
      const ref = convForward(xv, wv, g);
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.filter);
      const b = tf.tensor1d(bv);
      const plain = runDirect(conv, x, w, c);
      const biased = runDirect(conv, x, w, c, b);
      tf.dispose([x, w, b]);
      const refBiased = ref.map((v, j) => v + bv[j % g.Co]);
      const err = Math.max(relativeError(plain, ref), relativeError(biased, refBiased));
      if (!(err <= TOLERANCE)) failures.push(`${name(c)}: ${err}`);
    });
    expect(failures).toEqual([]);
  });

  it(`keeps ${INDIRECTION_CACHE_SIZE} indirection tables, least recently used out, and rebuilds an evicted one`, () => {
    const own = new SimdConv(conv.wasm, conv.exports, conv.splitter);
    try {
      const c = (H: number): Case => ({ x: [1, H, 5, 8], filter: [3, 3, 8, 8], strides: [1, 1], pad: 'same' });
      const check = (H: number) => {
        const cs = c(H);
        const g = geometry(cs.x, cs.filter, cs.strides, cs.pad);
        const xv = randomValues(cs.x.reduce((p, d) => p * d, 1), H);
        const wv = randomValues(cs.filter.reduce((p, d) => p * d, 1), H + 1);
        const x = tf.tensor4d(xv, cs.x);
        const w = tf.tensor4d(wv, cs.filter);
        const got = runDirect(own, x, w, cs);
        tf.dispose([x, w]);
        return relativeError(got, convForward(xv, wv, g));
      };
      // One more shape than the cache holds: the first is evicted, then built again when it comes back.
      const errors = Array.from({ length: INDIRECTION_CACHE_SIZE + 1 }, (_, i) => check(3 + i));
      expect(own.cachedShapes).toBe(INDIRECTION_CACHE_SIZE);
      errors.push(check(3));
      expect(own.cachedShapes).toBe(INDIRECTION_CACHE_SIZE);
      expect(Math.max(...errors)).toBeLessThan(TOLERANCE);
    } finally {
      own.dispose();
    }
  });

  it('gives the same bits whether its rows run on one thread or are split over two', () => {
    expect(conv.splitter.threads).toBe(2);
    const single = new SimdConv(conv.wasm, conv.exports, callingThreadOnly(conv.exports));
    try {
      for (const c of [CASES[0], CASES[2], CASES[3]]) {
        const x = tf.tensor4d(randomValues(c.x.reduce((p, d) => p * d, 1), 1), c.x);
        const w = tf.tensor4d(randomValues(c.filter.reduce((p, d) => p * d, 1), 2), c.filter);
        const split = runDirect(conv, x, w, c);
        const whole = runDirect(single, x, w, c);
        tf.dispose([x, w]);
        expect(Buffer.from(split.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
      }
    } finally {
      single.dispose();
    }
  });

  it('says which convolution the wasm backend runs', () => {
    expect(wasmConvolution()).toBe('fma');
    setActiveSimdConv(null);
    try {
      expect(wasmConvolution()).toBe('xnnpack');
    } finally {
      setActiveSimdConv(conv);
    }
  });

  it('runs under the registered Conv2D and FusedConv2D where it pays, the stock kernel elsewhere, and leaks nothing', () => {
    const run = vi.spyOn(conv, 'run');
    try {
      const big: Case = { x: [8, 14, 14, 64], filter: [4, 4, 64, 128], strides: [2, 2], pad: 'same' };
      const g = geometry(big.x, big.filter, big.strides, big.pad);
      const xv = randomValues(big.x.reduce((p, d) => p * d, 1), 5);
      const wv = randomValues(big.filter.reduce((p, d) => p * d, 1), 6);
      const bv = randomValues(g.Co, 7);
      const ref = convForward(xv, wv, g);
      tf.engine().startScope();
      const tensorsBefore = tf.memory().numTensors;
      const dataBefore = tf.engine().backend.numDataIds();
      const [plain, fused, small] = tf.tidy(() => {
        const x = tf.tensor4d(xv, big.x);
        const w = tf.tensor4d(wv, big.filter);
        const y = tf.conv2d(x, w, 2, 'same');
        const yFused = tf.fused.conv2d({ x, filter: w, strides: 2, pad: 'same', bias: tf.tensor1d(bv) });
        // 4 output channels (not a whole panel): the stock kernel. [1, 4, 4, 4], each a sum of 3·3·8 ones.
        expect(convShape(x, tf.zeros([4, 4, 32, 128]), attrsOf(big))).toBeNull(); // filter channels ≠ x channels
        const ySmall = tf.conv2d(tf.ones([1, 6, 6, 8]) as tf.Tensor4D, tf.ones([3, 3, 8, 4]) as tf.Tensor4D, 1, 'valid');
        return [y.dataSync(), yFused.dataSync(), ySmall.dataSync()];
      });
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(tf.engine().backend.numDataIds()).toBe(dataBefore);
      tf.engine().endScope();
      expect(run).toHaveBeenCalledTimes(2);
      expect(relativeError(plain, ref)).toBeLessThan(TOLERANCE);
      expect(relativeError(fused, ref.map((v, j) => v + bv[j % g.Co]))).toBeLessThan(TOLERANCE);
      expect(Array.from(small)).toEqual(new Array(64).fill(72));
    } finally {
      run.mockRestore();
    }
  });

  it('serves the conv gradients (they run forward convolutions) at the DCGAN layer sizes', () => {
    const run = vi.spyOn(conv, 'run');
    try {
      const c = { x: [8, 14, 14, 64], filter: [4, 4, 64, 128] };
      const g = geometry(c.x, c.filter, [2, 2], 'same');
      const xv = randomValues(c.x.reduce((p, d) => p * d, 1), 8);
      const wv = randomValues(c.filter.reduce((p, d) => p * d, 1), 9);
      const dyv = randomValues(g.B * g.OH * g.OW * g.Co, 10);
      const [dx, dw] = tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x as never);
        const w = tf.tensor4d(wv, c.filter as never);
        const dy = tf.tensor4d(dyv, [g.B, g.OH, g.OW, g.Co]);
        const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC' };
        const input = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: c.x } as never);
        const filter = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: c.filter } as never);
        return [(input as tf.Tensor).dataSync(), (filter as tf.Tensor).dataSync()];
      });
      // Four phase convolutions for the input gradient, one dilated convolution for the filter gradient.
      expect(run).toHaveBeenCalledTimes(5);
      expect(relativeError(dx, convBackpropInput(dyv, wv, g))).toBeLessThan(TOLERANCE);
      expect(relativeError(dw, convBackpropFilter(xv, dyv, g))).toBeLessThan(TOLERANCE);
    } finally {
      run.mockRestore();
    }
  });

  it('goes on, on one thread and with the same bits, when a helper thread dies', async () => {
    const { Worker } = await import('node:worker_threads');
    const { exports, module, memory } = instantiateConvModule(conv.wasm)!;
    const splitter = startHelpers(Worker, exports, module, memory, 2);
    const own = new SimdConv(conv.wasm, exports, splitter);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const c = CASES[0];
      const x = tf.tensor4d(randomValues(c.x.reduce((p, d) => p * d, 1), 3), c.x);
      const w = tf.tensor4d(randomValues(c.filter.reduce((p, d) => p * d, 1), 4), c.filter);
      const before = runDirect(own, x, w, c);
      expect(splitter.threads).toBe(2);
      await splitter.workers[0].terminate();
      await vi.waitFor(() => expect(splitter.threads).toBe(1));
      const after = runDirect(own, x, w, c);
      tf.dispose([x, w]);
      expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/^gantry: a wasm convolution helper thread stopped \(exit code \d+\); convolutions continue on one thread$/);
    } finally {
      warn.mockRestore();
      splitter.stop();
      own.dispose();
    }
  });

});
