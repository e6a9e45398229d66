import { checkOptions } from '@gantry/core';
import { FidError } from './errors.js';
import { checkSameDims, sliceRows, toFeatureSet, type FeatureSet } from './features.js';
import { gemmNT } from './linalg.js';
import type { FeatureBatch } from './stats.js';

export interface PrdcOptions {
  /** k of the k-NN radii for improved precision/recall (Kynkäänniemi et al. 2019). Default 3. */
  kPrecisionRecall?: number;
  /** k of the k-NN radii for density/coverage (Naeem et al. 2020). Default 5. */
  kDensityCoverage?: number;
}

export interface PrdcResult {
  /** Share of fake samples inside the real manifold (some real k-NN ball). */
  precision: number;
  /** Share of real samples inside the fake manifold (some fake k-NN ball). */
  recall: number;
  /** Mean number of real k-NN balls containing a fake sample, divided by k (≈ 1 for matching distributions). */
  density: number;
  /** Share of real samples whose k-NN ball holds at least one fake sample. */
  coverage: number;
  kPrecisionRecall: number;
  kDensityCoverage: number;
  n1: number;
  n2: number;
  dims: number;
}

/** Rows per block of a pairwise distance computation (block × N float64 values at a time). */
const BLOCK = 256;

function squaredNorms(set: FeatureSet): Float64Array {
  const out = new Float64Array(set.n);
  for (let i = 0; i < set.n; i++) {
    let s = 0;
    const o = i * set.dims;
    for (let j = 0; j < set.dims; j++) s += set.data[o + j] * set.data[o + j];
    out[i] = s;
  }
  return out;
}

/**
 * Calls `visit(i, row)` for every row i of `a` with row[j] = ‖aᵢ − bⱼ‖² (float64, clipped at 0), a block of rows at a
 * time, so the N×M matrix is never held.
 */
function forEachDistanceRow(a: FeatureSet, b: FeatureSet, visit: (i: number, row: Float64Array) => void): void {
  const na = squaredNorms(a);
  const nb = squaredNorms(b);
  const bAll = sliceRows(b, 0, b.n);
  const block = new Float64Array(BLOCK * b.n);
  for (let start = 0; start < a.n; start += BLOCK) {
    const end = Math.min(a.n, start + BLOCK);
    const rows = end - start;
    gemmNT(sliceRows(a, start, end), rows, bAll, b.n, a.dims, block);
    for (let r = 0; r < rows; r++) {
      const i = start + r;
      const row = block.subarray(r * b.n, (r + 1) * b.n);
      for (let j = 0; j < b.n; j++) row[j] = Math.max(0, na[i] + nb[j] - 2 * row[j]);
      visit(i, row);
    }
  }
}

/**
 * Squared distance from every point to its k-th nearest other point of the same set, for each k in `ks`
 * (the point itself is skipped by index, so duplicates count as neighbours at distance 0).
 */
export function kNearestSquaredRadii(set: FeatureSet, ks: readonly number[]): Float64Array[] {
  const kMax = Math.max(...ks);
  if (set.n <= kMax) throw new FidError(`k-NN radii with k = ${kMax} need more than ${kMax} samples, got ${set.n}`);
  const radii = ks.map(() => new Float64Array(set.n));
  const best = new Float64Array(kMax);
  forEachDistanceRow(set, set, (i, row) => {
    best.fill(Infinity);
    for (let j = 0; j < row.length; j++) {
      const v = row[j];
      if (j === i || v >= best[kMax - 1]) continue;
      // Insertion into the sorted list of the kMax smallest.
      let p = kMax - 1;
      while (p > 0 && best[p - 1] > v) {
        best[p] = best[p - 1];
        p--;
      }
      best[p] = v;
    }
    ks.forEach((k, idx) => (radii[idx][i] = best[k - 1]));
  });
  return radii;
}

/**
 * Improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) from
 * k-nearest-neighbour balls in feature space. Distances in float64, computed a block at a time.
 */
export function precisionRecallDensityCoverage(
  real: FeatureBatch | FeatureSet,
  fake: FeatureBatch | FeatureSet,
  options: PrdcOptions & { dims?: number } = {},
): PrdcResult {
  checkOptions('precisionRecallDensityCoverage', options, ['kPrecisionRecall', 'kDensityCoverage', 'dims']);
  const x = toFeatureSet(real, options.dims);
  const y = toFeatureSet(fake, options.dims);
  checkSameDims(x, y);
  const kPR = options.kPrecisionRecall ?? 3;
  const kDC = options.kDensityCoverage ?? 5;
  for (const k of [kPR, kDC]) if (!Number.isInteger(k) || k < 1) throw new FidError(`k must be a positive integer, got ${k}`);
  const [realPR, realDC] = kNearestSquaredRadii(x, [kPR, kDC]);
  const [fakePR] = kNearestSquaredRadii(y, [kPR]);

  let precise = 0;
  let densitySum = 0;
  const recalled = new Uint8Array(x.n);
  const nearestFake = new Float64Array(x.n).fill(Infinity);
  forEachDistanceRow(y, x, (j, row) => {
    let inside = false;
    let balls = 0;
    for (let i = 0; i < row.length; i++) {
      const dist = row[i];
      if (dist <= realPR[i]) inside = true;
      if (dist <= realDC[i]) balls++;
      if (dist <= fakePR[j]) recalled[i] = 1;
      if (dist < nearestFake[i]) nearestFake[i] = dist;
    }
    if (inside) precise++;
    densitySum += balls;
  });
  let recall = 0;
  let covered = 0;
  for (let i = 0; i < x.n; i++) {
    recall += recalled[i];
    if (nearestFake[i] <= realDC[i]) covered++;
  }
  return {
    precision: precise / y.n,
    recall: recall / x.n,
    density: densitySum / (kDC * y.n),
    coverage: covered / x.n,
    kPrecisionRecall: kPR,
    kDensityCoverage: kDC,
    n1: x.n,
    n2: y.n,
    dims: x.dims,
  };
}
