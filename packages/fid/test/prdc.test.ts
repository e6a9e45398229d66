import { describe, expect, it } from 'vitest';
import { kNearestSquaredRadii, precisionRecallDensityCoverage } from '../src/index.js';
import { gaussian } from './helpers.js';

const line = (values: number[]) => Float32Array.from(values);

describe('precision, recall, density, coverage', () => {
  it('are 1 (precision, recall, coverage) for identical sets', () => {
    const x = Float32Array.from(gaussian(300 * 5, 4));
    const r = precisionRecallDensityCoverage(x, x, { dims: 5 });
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(1);
    expect(r.coverage).toBe(1);
    expect(r.density).toBeGreaterThan(0.8);
    expect(r).toMatchObject({ kPrecisionRecall: 3, kDensityCoverage: 5, n1: 300, n2: 300, dims: 5 });
  });

  it('are 0 for far apart sets', () => {
    const x = Float32Array.from(gaussian(100 * 3, 1));
    const y = x.map((v) => v + 100);
    const r = precisionRecallDensityCoverage(x, y, { dims: 3 });
    expect([r.precision, r.recall, r.density, r.coverage]).toEqual([0, 0, 0, 0]);
  });

  it('k-NN radii on a 1-D grid', () => {
    // Points 0 … 9: the 3rd nearest other point is 3 away at the ends, 2 away inside.
    const [r3] = kNearestSquaredRadii({ data: line([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), n: 10, dims: 1 }, [3]);
    expect(Array.from(r3)).toEqual([9, 4, 4, 4, 4, 4, 4, 4, 4, 9]);
  });

  it('match hand-computed values on a grid with some fakes off the data', () => {
    // Real 0 … 9. k = 3 radii: 3 at 0 and 9, 2 elsewhere. Fakes 1.5 (in the ball of 1) and −2.5 (in the ball of 0,
    // radius 3) count, 20 and 100 do not: precision 2/4. k = 5 radii: 5, 4, 3, 3, 3, 3, 3, 3, 4, 5; the fake 1.5 lies in
    // the balls of 0 … 4 (5 balls), −2.5 in those of 0 and 1 (2 balls): density 7/(5·4) = 0.35; reals 0 … 4 have a fake
    // in their ball: coverage 0.5. The fakes' own 3-NN radii are huge (98.5 for 1.5), so every real is recalled.
    const real = line([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const fake = line([1.5, 20, -2.5, 100]);
    const r = precisionRecallDensityCoverage(real, fake, { dims: 1 });
    expect(r.precision).toBe(0.5);
    expect(r.recall).toBe(1);
    expect(r.density).toBeCloseTo(0.35, 14);
    expect(r.coverage).toBe(0.5);
  });

  it('see a dropped mode: precision 1, recall and coverage 1/2', () => {
    // Real: clusters {0 … 4} and {100 … 104}; fakes 0.5 … 4.5 cover the first only. Fake 3-NN radius is 3 at 0.5
    // (and at least 2 for all), so the reals 0 … 4 are recalled and 100 … 104 are not. With k = 2 the real radii in a
    // cluster are 2, 1, 1, 1, 2; fake balls counts: 0.5 → 2, 1.5 → 3, 2.5 → 3, 3.5 → 2, 4.5 → 1, density 11/(2·5).
    const real = line([0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
    const fake = line([0.5, 1.5, 2.5, 3.5, 4.5]);
    const r = precisionRecallDensityCoverage(real, fake, { dims: 1, kDensityCoverage: 2 });
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
    expect(r.coverage).toBe(0.5);
    expect(r.density).toBeCloseTo(1.1, 14);
  });

  it('needs more samples than k', () => {
    expect(() => precisionRecallDensityCoverage(line([0, 1, 2]), line([0, 1, 2, 3, 4, 5]), { dims: 1 })).toThrow(/need more than 5 samples, got 3/);
  });
});
