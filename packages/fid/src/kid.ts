import { Rng, checkOptions } from '@gantry/core';
import { FidError } from './errors.js';
import { checkSameDims, gatherRows, sampleWithoutReplacement, toFeatureSet, type FeatureSet } from './features.js';
import { gemmNT } from './linalg.js';
import type { FeatureBatch } from './stats.js';

export interface KidOptions {
  /** Number of random subsets the estimate is averaged over. Default 100. */
  subsets?: number;
  /** Samples per subset from each set. Default min(1000, N_real, N_fake). */
  subsetSize?: number;
  /** Seed of the subset draws. Default 0. */
  seed?: number;
}

export interface KidResult {
  /** Mean of the unbiased MMD² estimates over subsets. */
  value: number;
  /** Standard deviation over subsets (0 with a single subset). */
  std: number;
  subsets: number;
  subsetSize: number;
  n1: number;
  n2: number;
  dims: number;
}

/** The cubic polynomial kernel of Bińkowski et al. (2018) applied to a matrix of dot products, in place. */
function cubicKernel(dots: Float64Array, dims: number): void {
  for (let i = 0; i < dots.length; i++) {
    const v = dots[i] / dims + 1;
    dots[i] = v * v * v;
  }
}

/**
 * Unbiased MMD² between one subset of each set with k(x, y) = (x·y/d + 1)³:
 *   Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/m².
 */
export function mmdPolynomialUnbiased(x: Float64Array, y: Float64Array, m: number, dims: number): number {
  if (m < 2) throw new FidError(`unbiased MMD needs at least 2 samples per set, got ${m}`);
  const offDiagonalSum = (block: Float64Array) => {
    const k = gemmNT(block, m, block, m, dims, new Float64Array(m * m), { upper: true });
    cubicKernel(k, dims);
    let s = 0;
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) s += k[i * m + j];
    return 2 * s;
  };
  const kxy = gemmNT(x, m, y, m, dims, new Float64Array(m * m));
  cubicKernel(kxy, dims);
  let cross = 0;
  for (let i = 0; i < kxy.length; i++) cross += kxy[i];
  return (offDiagonalSum(x) + offDiagonalSum(y)) / (m * (m - 1)) - (2 * cross) / (m * m);
}

/**
 * Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel, averaged
 * over random subsets drawn without replacement (seeded). Unlike FID it is unbiased in N, so small sets give
 * comparable (if noisier) numbers. Computed in float64.
 */
export function kernelInceptionDistance(
  real: FeatureBatch | FeatureSet,
  fake: FeatureBatch | FeatureSet,
  options: KidOptions & { dims?: number } = {},
): KidResult {
  checkOptions('kernelInceptionDistance', options, ['subsets', 'subsetSize', 'seed', 'dims']);
  const a = toFeatureSet(real, options.dims);
  const b = toFeatureSet(fake, options.dims);
  checkSameDims(a, b);
  const subsets = options.subsets ?? 100;
  const m = options.subsetSize ?? Math.min(1000, a.n, b.n);
  if (!Number.isInteger(subsets) || subsets < 1) throw new FidError(`KID subsets must be a positive integer, got ${subsets}`);
  if (!Number.isInteger(m) || m < 2) throw new FidError(`KID subset size must be an integer ≥ 2, got ${m}`);
  if (m > a.n || m > b.n) throw new FidError(`KID subset size ${m} exceeds the set sizes (${a.n} real, ${b.n} fake)`);
  const rng = new Rng(options.seed ?? 0);
  const d = a.dims;
  const x = new Float64Array(m * d);
  const y = new Float64Array(m * d);
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    gatherRows(a, sampleWithoutReplacement(a.n, m, rng), x);
    gatherRows(b, sampleWithoutReplacement(b.n, m, rng), y);
    values.push(mmdPolynomialUnbiased(x, y, m, d));
  }
  const mean = values.reduce((s, v) => s + v, 0) / subsets;
  const variance = subsets > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / subsets : 0;
  return { value: mean, std: Math.sqrt(variance), subsets, subsetSize: m, n1: a.n, n2: b.n, dims: d };
}
