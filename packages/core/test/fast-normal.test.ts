import '@tensorflow/tfjs-backend-cpu';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { GantryError } from '../src/errors.js';
import {
  ZIGGURAT_STRIPS,
  fastNormalValues,
  normalTailArea,
  xoshiroNext,
  xoshiroSeed,
  ziggurat,
} from '../src/fast-normal.js';
import { drawLatents } from '../src/model-inputs.js';
import { Rng } from '../src/random.js';
import { lossTrace, pointTrainer, useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

/**
 * erf(x) by the series (2/√π)·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)) (Abramowitz and Stegun 7.1.6): all terms positive,
 * so no cancellation; summed until a term no longer changes the sum, which leaves a relative error of a few 1e-16 for
 * |x| < 6. Independent of the continued fraction the generator solves its tables with.
 */
function erf(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 0; sum + term !== sum; n++) {
    term *= (2 * x * x) / (2 * n + 3);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}
/** Φ(x), the standard normal CDF. */
const normalCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
const density = (x: number) => Math.exp(-0.5 * x * x);

describe('the ziggurat tables', () => {
  const { r, area: v, edges } = ziggurat;
  const N = ZIGGURAT_STRIPS;

  it('r and the strip area are Marsaglia and Tsang\'s (2000) values for 128 strips', () => {
    // Their r is given to 12 decimals (ours: 3.4426198558966…), which moves v in its 13th.
    expect(r).toBeCloseTo(3.442619855899, 11);
    expect(v).toBeCloseTo(9.91256303526217e-3, 12);
  });

  it('every strip has the same area v; the base strip is r·f(r) plus the tail; x[1] = r, x[N] = 0', () => {
    expect(edges[1]).toBe(r);
    expect(edges[N]).toBe(0);
    // The tail by the independent erf series: √(2π)·(1 − Φ(r)).
    expect(normalTailArea(r)).toBeCloseTo(Math.sqrt(2 * Math.PI) * (1 - normalCdf(r)), 14);
    expect(r * density(r) + normalTailArea(r)).toBeCloseTo(v, 15);
    // x[0] is the width of a rectangle of height f(r) and area v.
    expect(edges[0] * density(r)).toBeCloseTo(v, 15);
    for (let i = 1; i < N; i++) {
      // Strip i spans [0, x[i]] × [f(x[i]), f(x[i+1])]; the top one reaches f(0) = 1.
      const stripArea = edges[i] * (density(edges[i + 1]) - density(edges[i]));
      expect(Math.abs(stripArea - v) / v).toBeLessThan(1e-9);
      expect(edges[i + 1]).toBeLessThan(edges[i]);
    }
  });
});

describe('fastNormalValues', () => {
  const n = 1_000_000;
  const x = fastNormalValues(n, 0, 1, 20260101);

  it('moments of 1e6 draws: mean 0, variance 1, skewness 0, excess kurtosis 0, each within 5 standard errors', () => {
    let m1 = 0;
    for (const v of x) m1 += v;
    m1 /= n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (const v of x) {
      const d = v - m1;
      const d2 = d * d;
      m2 += d2;
      m3 += d2 * d;
      m4 += d2 * d2;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    // Standard errors for a normal sample: mean 1/√n, variance √(2/n), skewness √(6/n), excess kurtosis √(24/n).
    // z = 5: a correct generator fails one of the four with probability about 2e-6 (the seed is fixed anyway).
    const z = 5;
    expect(Math.abs(m1)).toBeLessThan(z / Math.sqrt(n));
    expect(Math.abs(m2 - 1)).toBeLessThan(z * Math.sqrt(2 / n));
    expect(Math.abs(m3 / m2 ** 1.5)).toBeLessThan(z * Math.sqrt(6 / n));
    expect(Math.abs(m4 / (m2 * m2) - 3)).toBeLessThan(z * Math.sqrt(24 / n));
  });

  it('Kolmogorov–Smirnov distance to Φ below the 0.1% critical value 1.95/√n', () => {
    const sorted = Float64Array.from(x).sort();
    let distance = 0;
    for (let i = 0; i < n; i++) {
      const cdf = normalCdf(sorted[i]);
      distance = Math.max(distance, (i + 1) / n - cdf, cdf - i / n);
    }
    expect(distance).toBeLessThan(1.95 / Math.sqrt(n));
    // A sanity check of the statistic itself: N(0.01, 1) draws are detected (shift 0.01 moves the CDF by ≈ 0.004).
    const shifted = Float64Array.from(x, (v) => v + 0.01).sort();
    let shiftedDistance = 0;
    for (let i = 0; i < n; i++) shiftedDistance = Math.max(shiftedDistance, Math.abs((i + 1) / n - normalCdf(shifted[i])));
    expect(shiftedDistance).toBeGreaterThan(1.95 / Math.sqrt(n));
  });

  it('the tails beyond the base strip edge r and beyond 4 hold 2·(1 − Φ) of the draws, on both sides', () => {
    const { r } = ziggurat;
    let beyondR = 0;
    let beyond4 = 0;
    let positive = 0;
    for (const v of x) {
      if (Math.abs(v) > r) {
        beyondR++;
        if (v > 0) positive++;
      }
      if (Math.abs(v) > 4) beyond4++;
    }
    // Binomial counts: expected n·p, standard error √(n·p·(1 − p)); z = 5 again.
    for (const [count, edge] of [
      [beyondR, r],
      [beyond4, 4],
    ]) {
      const p = 2 * (1 - normalCdf(edge));
      expect(Math.abs(count - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
    }
    expect(Math.abs(positive - beyondR / 2)).toBeLessThan(5 * Math.sqrt(beyondR / 4));
  });

  it('is deterministic: the same seed gives the same values, other seeds (0 included) other values', () => {
    for (const count of [1, 7, 4097, 10_001]) {
      const a = fastNormalValues(count, 0, 1, 5);
      expect(a).toHaveLength(count);
      expect(Array.from(a)).toEqual(Array.from(fastNormalValues(count, 0, 1, 5)));
      expect(a.every(Number.isFinite)).toBe(true);
    }
    const values = [0, 1, 2, 4294967295].map((seed) => Array.from(fastNormalValues(64, 0, 1, seed)));
    for (let i = 0; i < values.length; i++) {
      for (let j = i + 1; j < values.length; j++) expect(values[i]).not.toEqual(values[j]);
    }
    expect(fastNormalValues(0, 0, 1, 3)).toHaveLength(0);
  });

  it('mean and stdDev: mean + stdDev·z of the standard draws; stdDev 0 gives the mean', () => {
    const standard = fastNormalValues(10_001, 0, 1, 9);
    const scaled = fastNormalValues(10_001, -3, 0.5, 9);
    for (let i = 0; i < standard.length; i++) expect(scaled[i]).toBe(Math.fround(-3 + 0.5 * standard[i]));
    expect(Array.from(fastNormalValues(9, 2.5, 0, 9))).toEqual(new Array(9).fill(2.5));
  });

  it('its inner loop steps xoshiro128** as xoshiroNext does: values inside their strip are the word\'s x, in order', () => {
    // The loop inlines the generator step for speed; the reference step reproduces every value that took the fast
    // path (words whose x lies inside their strip's rectangle). The first chunk holds 4096 draws.
    const count = 4096;
    const values = fastNormalValues(count, 0, 1, 77);
    const state = xoshiroSeed(77);
    let checked = 0;
    for (let i = 0; i < count; i++) {
      const word = xoshiroNext(state);
      const strip = word & (ZIGGURAT_STRIPS - 1);
      const value = ((word >> 7) + 0.5) * ziggurat.edges[strip] * 2 ** -24;
      if (Math.abs(value) < ziggurat.edges[strip + 1]) {
        expect(values[i]).toBe(Math.fround(value));
        checked++;
      }
    }
    // A draw takes the fast path with probability (1/N)·Σ x[i+1]/x[i] (its x is uniform on the strip's width).
    let pFast = 0;
    for (let i = 0; i < ZIGGURAT_STRIPS; i++) pFast += ziggurat.edges[i + 1] / ziggurat.edges[i] / ZIGGURAT_STRIPS;
    expect(Math.abs(checked - count * pFast)).toBeLessThan(5 * Math.sqrt(count * pFast * (1 - pFast)));
  });
});

describe('drawLatents and the Trainer option normalGenerator', () => {
  it("drawLatents with 'fast' is fastNormalValues of the stream's next seed, as one [n, dim] tensor; nothing leaks", () => {
    const before = tf.memory().numTensors;
    const z = drawLatents(33, 5, 'normal', new Rng(4), 'fast');
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(z.shape).toEqual([33, 5]);
    expect(z.dtype).toBe('float32');
    expect(Array.from(z.dataSync())).toEqual(Array.from(fastNormalValues(33 * 5, 0, 1, new Rng(4).nextSeed())));
    const reference = drawLatents(33, 5, 'normal', new Rng(4));
    const tfjs = tf.randomNormal([33, 5], 0, 1, 'float32', new Rng(4).nextSeed());
    expect(Array.from(reference.dataSync())).toEqual(Array.from(tfjs.dataSync()));
    tf.dispose(tfjs);
    tf.dispose([z, reference]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a bad value is one clear line', () => {
    expect(() => pointTrainer({ normalGenerator: 'ziggurat' as never })).toThrow(
      new GantryError('Trainer option "normalGenerator" must be "tfjs" or "fast", got "ziggurat"'),
    );
    expect(pointTrainer().normalGenerator).toBe('tfjs');
  });

  it("a 'fast' run is reproducible, differs from the default's latents, and resumes bit-exactly", async () => {
    const fast = (steps: number, extra = {}) => pointTrainer({ steps, normalGenerator: 'fast', ...extra });
    const full = await lossTrace(fast(10));
    expect(await lossTrace(fast(10))).toEqual(full);
    expect(await lossTrace(pointTrainer({ steps: 10 }))).not.toEqual(full);
    const dir = await mkdtemp(join(tmpdir(), 'gantry-fast-normal-'));
    await fast(5, { checkpoint: { dir, every: 5 } }).train();
    const resumed = fast(10);
    await resumed.restore(dir);
    expect(resumed.step).toBe(5);
    expect(await lossTrace(resumed)).toEqual(full.slice(5));
    // Resuming with the other generator would draw other latents: refused before anything is loaded.
    const other = pointTrainer({ steps: 10 });
    await expect(other.restore(dir)).rejects.toThrow(
      /step-000005 was written with normalGenerator "fast" but this Trainer uses "tfjs": pass normalGenerator: "fast"/,
    );
    expect(other.step).toBe(0);
  });
});
