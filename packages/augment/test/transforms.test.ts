import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@gantry/core';
import { IDENTITY, applyAda, applyDiffAugment, drawAda, drawDiffAugment, parsePolicy, type AdaImageParams } from '../src/index.js';
import { useCpuBackend } from '@gantry/core/testing';

beforeAll(useCpuBackend);

/** An n×n single-channel image batch of one image with pixel (i, j) = f(i, j). */
const image = (n: number, f: (i: number, j: number) => number) =>
  tf.tensor4d(Array.from({ length: n * n }, (_, k) => f(Math.floor(k / n), k % n)), [1, n, n, 1]);
/** The image's pixels as rows. */
function rows(t: tf.Tensor): number[][] {
  const [, h, w] = t.shape;
  const v = Array.from(t.dataSync());
  t.dispose();
  return Array.from({ length: h }, (_, i) => v.slice(i * w, (i + 1) * w));
}
const closeRows = (actual: number[][], expected: number[][], digits = 5) =>
  actual.forEach((row, i) => row.forEach((v, j) => expect(v, `(${i}, ${j})`).toBeCloseTo(expected[i][j], digits)));
const numbered = (n: number) => image(n, (i, j) => i * n + j + 1);

describe('DiffAugment transforms, closed form', () => {
  it('brightness adds, contrast scales deviations from the image mean, saturation from the channel mean', () => {
    const x = tf.tensor4d([1, 3, -1, 0, 2, 2, 0.5, -0.5], [1, 2, 2, 2]);
    const v = [1, 3, -1, 0, 2, 2, 0.5, -0.5];
    const bright = applyDiffAugment(x, { brightness: [0.3] });
    expect(Array.from(bright.dataSync())).toEqual(v.map((a) => expect.closeTo(a + 0.3, 6)));
    const sat = applyDiffAugment(x, { saturation: [1.5] });
    const satExpected = [0, 1, 2, 3].flatMap((p) => {
      const [a, b] = [v[2 * p], v[2 * p + 1]];
      const m = (a + b) / 2;
      return [(a - m) * 1.5 + m, (b - m) * 1.5 + m];
    });
    expect(Array.from(sat.dataSync())).toEqual(satExpected.map((e) => expect.closeTo(e, 6)));
    const mean = v.reduce((a, b) => a + b) / v.length;
    const con = applyDiffAugment(x, { contrast: [0.7] });
    expect(Array.from(con.dataSync())).toEqual(v.map((a) => expect.closeTo((a - mean) * 0.7 + mean, 6)));
    tf.dispose([x, bright, sat, con]);
  });

  it('translation (1, −1): output (i, j) shows input (i − 1, j + 1), zeros outside', () => {
    const x = numbered(4);
    const y = rows(applyDiffAugment(x, { translation: [[1, -1]] }));
    expect(y).toEqual([
      [0, 0, 0, 0],
      [2, 3, 4, 0],
      [6, 7, 8, 0],
      [10, 11, 12, 0],
    ]);
    x.dispose();
  });

  it('cutout of half the size at offset (2, 7) on 8×8 zeroes rows 0–3 and columns 5–7', () => {
    const x = image(8, () => 1);
    const y = rows(applyDiffAugment(x, { cutout: [[2, 7]] }));
    y.forEach((row, i) => row.forEach((v, j) => expect(v).toBe(i <= 3 && j >= 5 ? 0 : 1)));
    x.dispose();
  });

  it('draws the paper ranges: translation in [−4, 4] for 28 px (both ends reached), cutout offsets in [0, 28]', () => {
    const params = drawDiffAugment(new Rng(3), parsePolicy('color,translation,cutout'), 2000, 28, 28);
    const shifts = params.translation!.flat();
    expect(Math.min(...shifts)).toBe(-4);
    expect(Math.max(...shifts)).toBe(4);
    const offsets = params.cutout!.flat();
    expect(Math.min(...offsets)).toBe(0);
    expect(Math.max(...offsets)).toBe(28);
    expect(Math.min(...params.brightness!)).toBeGreaterThanOrEqual(-0.5);
    expect(Math.max(...params.contrast!)).toBeLessThan(1.5);
    expect(() => parsePolicy('color,blur')).toThrow(/unknown policy "blur"/);
  });
});

const ada = (overrides: Partial<AdaImageParams>): AdaImageParams => ({ ...IDENTITY, ...overrides });

describe('ADA transforms, closed form', () => {
  it('x-flip and quarter turns are exact permutations', () => {
    const x = numbered(3);
    const m = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ];
    const cases: [Partial<AdaImageParams>, number[][]][] = [
      [{ xflip: true }, m.map((r) => [...r].reverse())],
      [{ quarterTurns: 1 }, [[3, 6, 9], [2, 5, 8], [1, 4, 7]]],
      [{ quarterTurns: 2 }, [[9, 8, 7], [6, 5, 4], [3, 2, 1]]],
      [{ quarterTurns: 3 }, [[7, 4, 1], [8, 5, 2], [9, 6, 3]]],
      // An angle of π/2 is folded into one quarter turn.
      [{ angle: Math.PI / 2 }, [[3, 6, 9], [2, 5, 8], [1, 4, 7]]],
    ];
    for (const [params, expected] of cases) expect(rows(applyAda(x, [ada(params)]))).toEqual(expected);
    x.dispose();
  });

  it('integer translation reflects at the border; zero padding when asked', () => {
    const x = numbered(4);
    // (0, 1): output column j shows input column j − 1; column −1 reflects to column 1.
    expect(rows(applyAda(x, [ada({ translate: [0, 1] })]))).toEqual([
      [2, 1, 2, 3],
      [6, 5, 6, 7],
      [10, 9, 10, 11],
      [14, 13, 14, 15],
    ]);
    expect(rows(applyAda(x, [ada({ translate: [-1, 0] })], 'zero'))).toEqual([
      [5, 6, 7, 8],
      [9, 10, 11, 12],
      [13, 14, 15, 16],
      [0, 0, 0, 0],
    ]);
    x.dispose();
  });

  it('scale 2 samples c + (i − c)/2 with linear interpolation', () => {
    const values = [1, 5, -2, 4];
    const x = image(4, (_, j) => values[j]);
    // c = 1.5: outputs sample 0.75, 1.25, 1.75, 2.25.
    const expectedRow = [0.75, 1.25, 1.75, 2.25].map((u) => {
      const k = Math.floor(u);
      return values[k] * (1 - (u - k)) + values[k + 1] * (u - k);
    });
    // Rows sample the same positions of a constant column, so every row equals the interpolated row.
    closeRows(rows(applyAda(x, [ada({ scale: 2 })])), [expectedRow, expectedRow, expectedRow, expectedRow]);
    x.dispose();
  });

  it('rotation by three shears reproduces an affine image exactly near the centre; a constant image stays constant', () => {
    const n = 9;
    const c = 4;
    const f = (i: number, j: number) => 0.3 * (i - c) - 0.2 * (j - c) + 0.1;
    const phi = 0.3;
    const y = rows(applyAda(image(n, f), [ada({ angle: phi })]));
    // Each shear maps an affine image to an affine image; the composition samples f at R(φ)·p. Sample points
    // of the central 3×3 stay inside the image, so linear interpolation is exact there. R(φ) with Sx(a)Sy(b)Sx(a):
    const a = -Math.tan(phi / 2);
    const b = Math.sin(phi);
    for (let i = c - 1; i <= c + 1; i++) {
      for (let j = c - 1; j <= c + 1; j++) {
        // Sample (row, col) = Sx(a) then Sy(b) then Sx(a) applied to the output point, in that order of reads.
        let [r, q] = [i - c, j - c];
        q = q + a * r;
        r = r + b * q;
        q = q + a * r;
        expect(y[i][j]).toBeCloseTo(f(r + c, q + c), 4);
      }
    }
    // The composition is a rotation: the sample point stays at the same distance from the centre.
    const constant = rows(applyAda(image(n, () => 0.7), [ada({ angle: -2.5, scale: 1.3, translate: [2, -1] })]));
    constant.flat().forEach((v) => expect(v).toBeCloseTo(0.7, 5));
  });

  it('brightness then contrast: c·(x + b)', () => {
    const x = numbered(2);
    expect(rows(applyAda(x, [ada({ brightness: 0.5, contrast: 2 })]))).toEqual([
      [3, 5],
      [7, 9],
    ]);
    x.dispose();
  });

  it('draws: p = 0 gives the identity for every image; p = 1 applies every transform; draws per image fixed', () => {
    const all = new Set(['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'brightness', 'contrast'] as const);
    const none = drawAda(new Rng(1), 0, 50, [28, 28], all);
    none.forEach((params) => expect(params).toEqual(IDENTITY));
    const rngA = new Rng(1);
    const every = drawAda(rngA, 1, 400, [28, 28], all);
    // 7 coin flips + flip side, turns, 2 shifts, 2 per Gaussian (scale, brightness, contrast), angle = 18 per image.
    expect(rngA.getState().counter).toBe(400 * 18);
    const flips = every.filter((params) => params.xflip).length;
    expect(flips).toBeGreaterThan(150);
    expect(flips).toBeLessThan(250);
    every.forEach((params) => {
      expect(params.scale).not.toBe(1);
      expect(Math.abs(params.translate[0])).toBeLessThanOrEqual(4); // round(0.125·28) = 4 (3.5 rounds up)
      expect(Math.abs(params.angle)).toBeLessThanOrEqual(Math.PI);
    });
  });
});

describe('gradients flow through the transforms (central differences)', () => {
  const cases: [string, (x: tf.Tensor4D) => tf.Tensor][] = [
    ['ADA: turn, flip, translation, scale, rotation, brightness, contrast', (x) =>
      applyAda(x, [
        ada({ quarterTurns: 1, xflip: true, translate: [1, -1], scale: 1.3, angle: 0.4, brightness: 0.1, contrast: 1.5 }),
        ada({ scale: 0.8, angle: -0.2 }),
      ])],
    ['DiffAugment: color, translation, cutout', (x) =>
      applyDiffAugment(x, { brightness: [0.2, -0.1], saturation: [0.5, 1.7], contrast: [1.2, 0.6], translation: [[1, 0], [-1, 2]], cutout: [[1, 4], [3, 0]] })],
  ];
  for (const [name, transform] of cases) {
    it(name, () => {
      const x = tf.randomUniform([2, 5, 5, 2], -1, 1, 'float32', 11) as tf.Tensor4D;
      const w = tf.randomUniform([2, 5, 5, 2], -1, 1, 'float32', 12);
      const objective = (input: tf.Tensor4D) => tf.sum(tf.mul(tf.square(transform(input)), w));
      const grad = tf.grad((input: tf.Tensor) => objective(input as tf.Tensor4D))(x);
      const g = grad.dataSync();
      const base = x.dataSync();
      const h = 1e-2;
      for (const k of [0, 7, 23, 51, 77, 99]) {
        const at = (delta: number) =>
          tf.tidy(() => {
            const v = Float32Array.from(base);
            v[k] += delta;
            return objective(tf.tensor4d(v, x.shape)).dataSync()[0];
          });
        const numeric = (at(h) - at(-h)) / (2 * h);
        expect(g[k], `entry ${k}`).toBeCloseTo(numeric, 2);
      }
      tf.dispose([x, w, grad]);
    });
  }

  it('leaks no tensors', () => {
    const x = tf.randomUniform([3, 6, 6, 1], -1, 1, 'float32', 4) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const rng = new Rng(2);
    const y = applyAda(x, drawAda(rng, 0.9, 3, [6, 6], new Set(['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'brightness', 'contrast'])));
    const z = applyDiffAugment(x, drawDiffAugment(rng, ['color', 'translation', 'cutout'], 3, 6, 6));
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([x, y, z]);
  });
});
