import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { FeatureStats, featureMoments } from '../src/index.js';
import { correlatedSamples, maxAbsDiff, referenceMoments } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('FeatureStats', () => {
  const n = 517;
  const d = 13;
  const x = correlatedSamples(n, d, 7, 2);
  const ref = referenceMoments(x, n, d);

  it.each([[1], [7], [128], [200], [517]])('streaming in batches of %i equals the two-pass moments', (batch) => {
    const stats = new FeatureStats(d);
    for (let start = 0; start < n; start += batch) stats.add(x.subarray(start * d, Math.min(n, start + batch) * d));
    const m = stats.moments();
    expect(m.n).toBe(n);
    expect(maxAbsDiff(m.mean, ref.mean)).toBeLessThan(1e-12);
    expect(maxAbsDiff(m.cov, ref.cov)).toBeLessThan(1e-12);
  });

  it('uneven splits and merging give the same moments', () => {
    const a = new FeatureStats(d).add(x.subarray(0, 3 * d)).add(x.subarray(3 * d, 300 * d));
    const b = new FeatureStats(d).add(x.subarray(300 * d, 301 * d)).add(x.subarray(301 * d));
    const m = a.merge(b).moments();
    expect(maxAbsDiff(m.mean, ref.mean)).toBeLessThan(1e-12);
    expect(maxAbsDiff(m.cov, ref.cov)).toBeLessThan(1e-12);
  });

  it('keeps float64 precision with a large common offset (no sum-of-squares cancellation)', () => {
    const shifted = x.map((v) => v + 1e7);
    const stats = new FeatureStats(d);
    for (let start = 0; start < n; start += 50) stats.add(shifted.subarray(start * d, Math.min(n, start + 50) * d));
    const m = stats.moments();
    // Adding 1e7 rounds each value to ~2e-9, so covariance entries agree to ~1e-8, not to 1e-3 as E[x²]−E[x]² would.
    expect(maxAbsDiff(m.cov, ref.cov)).toBeLessThan(1e-7);
  });

  it('accepts [B, D] tensors and leaves them alive', () => {
    const t = tf.tensor2d(Float32Array.from(x), [n, d]);
    const stats = new FeatureStats(d).add(t);
    expect(t.isDisposed).toBe(false);
    const f32 = referenceMoments(Float32Array.from(x), n, d);
    expect(maxAbsDiff(stats.moments().cov, f32.cov)).toBeLessThan(1e-12);
    expect(maxAbsDiff(featureMoments(t).mean, f32.mean)).toBeLessThan(1e-12);
    t.dispose();
  });

  it('rejects wrong widths and too few samples with one clear line', () => {
    expect(() => new FeatureStats(3).add(new Float32Array(7))).toThrow(/not a whole number of 3-dim rows/);
    expect(() => new FeatureStats(3).add(new Float32Array(3)).moments()).toThrow(/at least 2 samples/);
    const t = tf.zeros([2, 4]);
    expect(() => new FeatureStats(3).add(t)).toThrow(/4 dims, expected 3/);
    t.dispose();
  });
});
