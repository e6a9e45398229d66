import { describe, expect, it } from 'vitest';
import { kernelInceptionDistance, mmdPolynomialUnbiased } from '../src/index.js';
import { correlatedSamples, gaussian } from './helpers.js';

/** The unbiased MMD² written out term by term with the kernel evaluated directly (no matrix products). */
function directMmd(x: number[][], y: number[][]): number {
  const d = x[0].length;
  const k = (a: number[], b: number[]) => (a.reduce((s, v, i) => s + v * b[i], 0) / d + 1) ** 3;
  const m = x.length;
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (i !== j) {
        xx += k(x[i], x[j]);
        yy += k(y[i], y[j]);
      }
      xy += k(x[i], y[j]);
    }
  }
  return xx / (m * (m - 1)) + yy / (m * (m - 1)) - (2 * xy) / (m * m);
}

const rows = (flat: Float64Array, d: number) => Array.from({ length: flat.length / d }, (_, i) => Array.from(flat.subarray(i * d, i * d + d)));

describe('kernelInceptionDistance', () => {
  it('gives the hand-computed value on two 1-D pairs', () => {
    // X = {0, 1}, Y = {1, 2}, d = 1, k(x, y) = (xy + 1)³: k_XX(0,1) = 1, k_YY(1,2) = 27,
    // Σ k_XY = k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37, so MMD² = 2/2 + 54/2 − 2·37/4 = 9.5.
    expect(mmdPolynomialUnbiased(Float64Array.of(0, 1), Float64Array.of(1, 2), 2, 1)).toBeCloseTo(9.5, 13);
    const r = kernelInceptionDistance(Float32Array.of(0, 1), Float32Array.of(2, 1), { dims: 1, subsets: 3 });
    expect(r.value).toBeCloseTo(9.5, 13);
    expect(r.std).toBeCloseTo(0, 13);
    expect(r).toMatchObject({ subsets: 3, subsetSize: 2, n1: 2, n2: 2, dims: 1 });
  });

  it('matches the kernel written out directly on a small set (one subset = whole sets)', () => {
    const d = 7;
    const x = correlatedSamples(9, d, 1);
    const y = correlatedSamples(9, d, 2, 0.3);
    const r = kernelInceptionDistance(Float32Array.from(x), Float32Array.from(y), { dims: d, subsets: 1, subsetSize: 9 });
    const expected = directMmd(rows(Float64Array.from(Float32Array.from(x)), d), rows(Float64Array.from(Float32Array.from(y)), d));
    expect(r.value).toBeCloseTo(expected, 10);
  });

  it('is about 0 for two samples of one distribution and clearly positive for shifted ones', () => {
    const d = 8;
    const a = Float32Array.from(gaussian(600 * d, 5));
    const b = Float32Array.from(gaussian(600 * d, 6));
    const shifted = b.map((v) => v + 0.5);
    const same = kernelInceptionDistance(a, b, { dims: d, subsets: 20, subsetSize: 200 });
    const apart = kernelInceptionDistance(a, shifted, { dims: d, subsets: 20, subsetSize: 200 });
    // Shift 0.5 in 8 dims: the MMD² is dominated by the linear and quadratic kernel terms, about 0.1.
    expect(Math.abs(same.value)).toBeLessThan(0.01);
    expect(apart.value).toBeGreaterThan(0.05);
    expect(apart.value).toBeGreaterThan(20 * Math.abs(same.value));
  });

  it('is reproducible for a seed and varies with it', () => {
    const d = 4;
    const a = Float32Array.from(gaussian(100 * d, 8));
    const b = Float32Array.from(gaussian(100 * d, 9));
    const r1 = kernelInceptionDistance(a, b, { dims: d, subsets: 5, subsetSize: 30, seed: 1 });
    const r2 = kernelInceptionDistance(a, b, { dims: d, subsets: 5, subsetSize: 30, seed: 1 });
    const r3 = kernelInceptionDistance(a, b, { dims: d, subsets: 5, subsetSize: 30, seed: 2 });
    expect(r2.value).toBe(r1.value);
    expect(r3.value).not.toBe(r1.value);
  });

  it('rejects subsets larger than the sets and unknown options', () => {
    expect(() => kernelInceptionDistance(new Float32Array(10), new Float32Array(10), { dims: 2, subsetSize: 6 })).toThrow(/exceeds the set sizes/);
    expect(() => kernelInceptionDistance(new Float32Array(10), new Float32Array(10), { dims: 2, subset: 3 } as never)).toThrow(/Unknown option "subset"/);
  });
});
