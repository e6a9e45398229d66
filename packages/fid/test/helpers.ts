import { Rng } from '@gantry/core';

/** Standard normal draws (Box–Muller on a seeded stream), float64. */
export function gaussian(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rng.uniform();
    const v = rng.uniform();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** N samples of a D-dim Gaussian with mean `shift` in every coordinate and correlated coordinates (x = z·A). */
export function correlatedSamples(n: number, d: number, seed: number, shift = 0): Float64Array {
  const z = gaussian(n * d, seed);
  const a = gaussian(d * d, seed + 1);
  const out = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) {
      let s = shift;
      for (let k = 0; k < d; k++) s += z[r * d + k] * a[k * d + j] * (k === j ? 1 : 0.3);
      out[r * d + j] = s;
    }
  }
  return out;
}

/** Two-pass float64 mean and unbiased covariance, the textbook way (reference for the streaming update). */
export function referenceMoments(x: ArrayLike<number>, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += x[r * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      const di = x[r * d + i] - mean[i];
      for (let j = 0; j < d; j++) cov[i * d + j] += (di * (x[r * d + j] - mean[j])) / (n - 1);
    }
  }
  return { mean, cov };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
