import { Matrix, inverse } from 'ml-matrix';
import { describe, expect, it, vi } from 'vitest';
import { featureMoments, frechetDistance, type FeatureMoments } from '../src/index.js';
import { correlatedSamples, gaussian } from './helpers.js';

const moments = (mean: number[], cov: number[][]): FeatureMoments => ({
  n: 1000,
  dims: mean.length,
  mean: Float64Array.from(mean),
  cov: Float64Array.from(cov.flat()),
});

/** A random rotation from the QR-free Gram–Schmidt of Gaussian columns. */
function rotation(d: number, seed: number): number[][] {
  const g = gaussian(d * d, seed);
  const q: number[][] = [];
  for (let i = 0; i < d; i++) {
    const v = Array.from({ length: d }, (_, j) => g[i * d + j]);
    for (const u of q) {
      const dot = u.reduce((s, x, j) => s + x * v[j], 0);
      for (let j = 0; j < d; j++) v[j] -= dot * u[j];
    }
    const norm = Math.hypot(...v);
    q.push(v.map((x) => x / norm));
  }
  return q;
}

/** Q diag(λ) Qᵀ. */
function withEigen(q: number[][], lambda: number[]): number[][] {
  const d = lambda.length;
  return Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => lambda.reduce((s, l, k) => s + q[k][i] * l * q[k][j], 0)),
  );
}

/** Tr(√(AB)) by the Denman–Beavers iteration in float64 (independent of any eigendecomposition). */
function traceSqrtDenmanBeavers(a: Float64Array, b: Float64Array, d: number): number {
  const A = new Matrix(Array.from({ length: d }, (_, i) => Array.from(a.subarray(i * d, i * d + d))));
  const B = new Matrix(Array.from({ length: d }, (_, i) => Array.from(b.subarray(i * d, i * d + d))));
  let Y = A.mmul(B);
  let Z = Matrix.eye(d, d);
  for (let k = 0; k < 100; k++) {
    const Yi = inverse(Y);
    const Zi = inverse(Z);
    const nextY = Matrix.add(Y, Zi).mul(0.5);
    const nextZ = Matrix.add(Z, Yi).mul(0.5);
    const change = Matrix.sub(nextY, Y).norm() / nextY.norm();
    Y = nextY;
    Z = nextZ;
    if (change < 1e-15) break;
  }
  return Y.trace();
}

describe('frechetDistance', () => {
  it.each([['auto'], ['eigen']] as const)('is 0 from a set to itself (%s)', (method) => {
    const m = featureMoments(correlatedSamples(400, 24, 3), 24);
    const r = frechetDistance(m, m, { method });
    const scale = 2 * m.cov.reduce((s, v, i) => (i % 25 === 0 ? s + v : s), 0);
    expect(Math.abs(r.value)).toBeLessThan(1e-8 * scale);
    expect(r.warnings).toEqual([]);
    expect(r).toMatchObject({ n1: 400, n2: 400, dims: 24 });
  });

  it('is 0 from a rank-deficient set (N < dims) to itself, and warns once', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const m = featureMoments(correlatedSamples(10, 32, 5), 32);
    const r = frechetDistance(m, m);
    frechetDistance(m, m);
    expect(r.method).toBe('eigen');
    const scale = 2 * m.cov.reduce((s, v, i) => (i % 33 === 0 ? s + v : s), 0);
    expect(Math.abs(r.value)).toBeLessThan(1e-8 * scale);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/N = 10 \(first set\) and N = 10 \(second set\) are below the 32 feature dimensions/);
    // Rank 9 of 32: rounding leaves about half of the 23 zero eigenvalues slightly negative, and those are clipped.
    expect(r.clippedEigenvalues).toBeGreaterThan(0);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
  });

  it('gives the closed form for diagonal covariances', () => {
    const a = [1, 2, 3, 0.5];
    const b = [4, 0.5, 3, 2];
    const r = frechetDistance(
      moments([0, 1, 2, 3], a.map((v, i) => a.map((_, j) => (i === j ? v : 0)))),
      moments([1, 1, 0, 3], b.map((v, i) => b.map((_, j) => (i === j ? v : 0)))),
    );
    const expected = 1 + 4 + a.reduce((s, ai, i) => s + ai + b[i] - 2 * Math.sqrt(ai * b[i]), 0);
    expect(r.value).toBeCloseTo(expected, 12);
    expect(r.meanTerm).toBeCloseTo(5, 14);
  });

  it('gives the closed form for commuting covariances, one of them singular', () => {
    const q = rotation(6, 11);
    const la = [0.1, 1, 2, 3, 4, 10];
    const lb = [5, 0.2, 2, 1, 0, 3];
    const r = frechetDistance(moments([0, 0, 0, 0, 0, 0], withEigen(q, la)), moments([1, 0, 0, 0, 0, 0], withEigen(q, lb)));
    const expected = 1 + la.reduce((s, a, i) => s + a + lb[i] - 2 * Math.sqrt(a * lb[i]), 0);
    // Σ₂ is singular: the zero eigenvalue of Σ₁Σ₂ comes out as ±1e-15, and √(1e-15) ≈ 3e-8 is the accuracy any
    // trace-of-square-root method has there.
    expect(Math.abs(r.value - expected)).toBeLessThan(2e-7);
  });

  it('gives the hand-computed value for a non-commuting 2×2 pair', () => {
    // Σ₁ = diag(1, 4), Σ₂ = [[2, 1], [1, 2]]: Σ₁Σ₂ = [[2, 1], [4, 8]], trace 10, determinant 12. For a 2×2 matrix
    // with non-negative eigenvalues, Tr √M = √λ₁ + √λ₂ = √(tr M + 2√det M) = √(10 + 4√3).
    const r = frechetDistance(moments([0, 0], [[1, 0], [0, 4]]), moments([1, 2], [[2, 1], [1, 2]]));
    expect(r.traceSqrt).toBeCloseTo(Math.sqrt(10 + 4 * Math.sqrt(3)), 13);
    expect(r.value).toBeCloseTo(5 + 5 + 4 - 2 * Math.sqrt(10 + 4 * Math.sqrt(3)), 13);
  });

  it.each([['auto'], ['eigen']] as const)('matches a Denman–Beavers matrix square root on random features (%s)', (method) => {
    const d = 12;
    const a = featureMoments(correlatedSamples(300, d, 21), d);
    const b = featureMoments(correlatedSamples(200, d, 33, 0.5), d);
    const r = frechetDistance(a, b, { method });
    expect(r.method).toBe(method === 'auto' ? 'cholesky' : 'eigen');
    const reference = traceSqrtDenmanBeavers(a.cov, b.cov, d);
    expect(Math.abs(r.traceSqrt - reference) / reference).toBeLessThan(1e-10);
    let diff = 0;
    let traces = 0;
    for (let i = 0; i < d; i++) {
      diff += (a.mean[i] - b.mean[i]) ** 2;
      traces += a.cov[i * d + i] + b.cov[i * d + i];
    }
    expect(r.value).toBeCloseTo(diff + traces - 2 * reference, 8);
    // Symmetric in its arguments.
    expect(frechetDistance(b, a, { method }).value).toBeCloseTo(r.value, 9);
  });

  it('rejects mismatched dims', () => {
    expect(() => frechetDistance(moments([0], [[1]]), moments([0, 0], [[1, 0], [0, 1]]))).toThrow(/1-dim features with 2-dim/);
  });
});
