import * as tf from '@tensorflow/tfjs-core';
import { FidError } from './errors.js';
import { gemmNT, symmetrizeFromUpper } from './linalg.js';

/** Features as they arrive: a [B, D] tensor, or B·D numbers row-major. */
export type FeatureBatch = tf.Tensor | Float32Array | Float64Array | readonly number[];

/** Mean and covariance of a feature set (float64, covariance D×D row-major, unbiased: divided by N − 1). */
export interface FeatureMoments {
  n: number;
  dims: number;
  mean: Float64Array;
  cov: Float64Array;
}

/** Rows per block of the scatter update: a block (block·D float64) stays in cache while the D×D matrix streams. */
const BLOCK_ROWS = 128;

/** Reads a feature batch as row-major numbers and checks its width. */
export function featureRows(batch: FeatureBatch, dims?: number): { data: ArrayLike<number>; rows: number; dims: number } {
  if (batch instanceof tf.Tensor) {
    if (batch.rank !== 2) throw new FidError(`features must be a [batch, dims] tensor, got shape [${batch.shape.join(', ')}]`);
    const [rows, width] = batch.shape as [number, number];
    if (dims !== undefined && width !== dims) throw new FidError(`features have ${width} dims, expected ${dims}`);
    return { data: batch.dataSync() as Float32Array, rows, dims: width };
  }
  if (dims === undefined) throw new FidError('a flat feature array needs its dims');
  if (batch.length % dims !== 0) {
    throw new FidError(`a flat feature array of length ${batch.length} is not a whole number of ${dims}-dim rows`);
  }
  return { data: batch, rows: batch.length / dims, dims };
}

/**
 * Streaming mean and covariance in float64. Each batch's own mean and centred scatter matrix are merged into the
 * running ones with Chan et al.'s pairwise update, so the result does not depend on how the data is split into
 * batches and never suffers the cancellation of a sum-of-squares formula; the samples themselves are never kept.
 */
export class FeatureStats {
  private count = 0;
  private readonly mu: Float64Array;
  /** Centred scatter Σ (x − μ)(x − μ)ᵀ; only the upper triangle is maintained. */
  private readonly m2: Float64Array;
  private readonly centred: Float64Array;

  constructor(readonly dims: number) {
    if (!Number.isInteger(dims) || dims < 1) throw new FidError(`FeatureStats needs a positive integer dims, got ${dims}`);
    this.mu = new Float64Array(dims);
    this.m2 = new Float64Array(dims * dims);
    this.centred = new Float64Array(BLOCK_ROWS * dims);
  }

  get n(): number {
    return this.count;
  }

  /** Adds a batch of features ([B, D] tensor, not disposed here, or B·D numbers row-major). */
  add(batch: FeatureBatch): this {
    const { data, rows } = featureRows(batch, this.dims);
    for (let start = 0; start < rows; start += BLOCK_ROWS) this.addBlock(data, start, Math.min(rows, start + BLOCK_ROWS));
    return this;
  }

  private addBlock(data: ArrayLike<number>, start: number, end: number): void {
    const d = this.dims;
    const nb = end - start;
    // Block mean, then the block centred on it, stored transposed (D×nb) so the scatter is a row-by-row product.
    const blockMean = new Float64Array(d);
    for (let r = start; r < end; r++) {
      const o = r * d;
      for (let j = 0; j < d; j++) blockMean[j] += data[o + j];
    }
    for (let j = 0; j < d; j++) blockMean[j] /= nb;
    const xt = this.centred;
    for (let r = start; r < end; r++) {
      const o = r * d;
      const c = r - start;
      for (let j = 0; j < d; j++) xt[j * nb + c] = data[o + j] - blockMean[j];
    }
    gemmNT(xt, d, xt, d, nb, this.m2, { accumulate: true, upper: true });
    // Chan et al.: M2 = M2_a + M2_b + δδᵀ · n_a n_b / n, μ = μ_a + δ · n_b / n, with δ = μ_b − μ_a.
    const na = this.count;
    const n = na + nb;
    const delta = new Float64Array(d);
    for (let j = 0; j < d; j++) delta[j] = blockMean[j] - this.mu[j];
    if (na > 0) {
      const w = (na * nb) / n;
      for (let i = 0; i < d; i++) {
        const di = delta[i] * w;
        const row = i * d;
        for (let j = i; j < d; j++) this.m2[row + j] += di * delta[j];
      }
    }
    for (let j = 0; j < d; j++) this.mu[j] += (delta[j] * nb) / n;
    this.count = n;
  }

  /** Merges another FeatureStats (e.g. from a parallel worker) into this one. */
  merge(other: FeatureStats): this {
    if (other.dims !== this.dims) throw new FidError(`cannot merge stats of ${other.dims} dims into ${this.dims} dims`);
    if (other.count === 0) return this;
    const d = this.dims;
    const na = this.count;
    const nb = other.count;
    const n = na + nb;
    const w = (na * nb) / n;
    for (let i = 0; i < d; i++) {
      const di = other.mu[i] - this.mu[i];
      for (let j = i; j < d; j++) this.m2[i * d + j] += other.m2[i * d + j] + di * (other.mu[j] - this.mu[j]) * w;
    }
    for (let j = 0; j < d; j++) this.mu[j] += ((other.mu[j] - this.mu[j]) * nb) / n;
    this.count = n;
    return this;
  }

  /** Mean and unbiased covariance (copies). Needs at least two samples. */
  moments(): FeatureMoments {
    if (this.count < 2) throw new FidError(`feature statistics need at least 2 samples, got ${this.count}`);
    const d = this.dims;
    const cov = new Float64Array(d * d);
    const scale = 1 / (this.count - 1);
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) cov[i * d + j] = this.m2[i * d + j] * scale;
    symmetrizeFromUpper(cov, d);
    return { n: this.count, dims: d, mean: Float64Array.from(this.mu), cov };
  }
}

/** Moments of a whole feature set at once (convenience for features already in memory). */
export function featureMoments(features: FeatureBatch, dims?: number): FeatureMoments {
  const { data, rows, dims: d } = featureRows(features, dims);
  const stats = new FeatureStats(d);
  stats.add(data instanceof Float32Array || data instanceof Float64Array ? data : Float64Array.from(data));
  if (stats.n !== rows) throw new FidError('internal: row count mismatch');
  return stats.moments();
}
