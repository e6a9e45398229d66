import { checkOptions } from '@gantry/core';
import { FidError } from './errors.js';
import { toFeatureSet, type FeatureSet } from './features.js';
import type { FeatureBatch } from './stats.js';

export interface InceptionScoreOptions {
  /** Number of contiguous splits; the score is computed per split and summarised by mean and std. Default 10. */
  splits?: number;
  /** The rows are logits (softmax is applied in float64) instead of probabilities. Default false. */
  logits?: boolean;
  /** Number of classes when a flat array is passed. */
  classes?: number;
}

export interface InceptionScoreResult {
  /** Mean over splits of exp(E_x KL(p(y|x) ‖ p(y))). */
  value: number;
  std: number;
  splits: number;
  n: number;
  classes: number;
}

/**
 * Inception Score (Salimans et al. 2016) from class probabilities p(y|x), one row per sample. The samples are cut
 * into `splits` contiguous, nearly equal parts (sizes differ by at most one; no sample is dropped); in each part
 * p(y) is the mean row and the score is exp of the mean KL divergence. Float64 throughout.
 */
export function inceptionScore(probabilities: FeatureBatch | FeatureSet, options: InceptionScoreOptions = {}): InceptionScoreResult {
  checkOptions('inceptionScore', options, ['splits', 'logits', 'classes']);
  const set = toFeatureSet(probabilities, options.classes);
  const { n, dims: c } = set;
  const splits = options.splits ?? 10;
  if (!Number.isInteger(splits) || splits < 1) throw new FidError(`IS splits must be a positive integer, got ${splits}`);
  if (n < splits) throw new FidError(`IS needs at least one sample per split: ${n} samples, ${splits} splits`);
  const p = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const o = i * c;
    if (options.logits) {
      let max = -Infinity;
      for (let j = 0; j < c; j++) max = Math.max(max, set.data[o + j]);
      let z = 0;
      for (let j = 0; j < c; j++) z += p[o + j] = Math.exp(set.data[o + j] - max);
      for (let j = 0; j < c; j++) p[o + j] /= z;
    } else {
      let z = 0;
      for (let j = 0; j < c; j++) {
        const v = set.data[o + j];
        if (!(v >= 0)) throw new FidError(`IS probabilities must be non-negative (row ${i} has ${v}); pass logits: true for logits`);
        z += v;
      }
      if (Math.abs(z - 1) > 1e-3) throw new FidError(`IS probability rows must sum to 1 (row ${i} sums to ${z}); pass logits: true for logits`);
      for (let j = 0; j < c; j++) p[o + j] = set.data[o + j] / z;
    }
  }
  const scores: number[] = [];
  for (let s = 0; s < splits; s++) {
    const start = Math.floor((s * n) / splits);
    const end = Math.floor(((s + 1) * n) / splits);
    const py = new Float64Array(c);
    for (let i = start; i < end; i++) for (let j = 0; j < c; j++) py[j] += p[i * c + j];
    for (let j = 0; j < c; j++) py[j] /= end - start;
    let kl = 0;
    for (let i = start; i < end; i++) {
      for (let j = 0; j < c; j++) {
        const v = p[i * c + j];
        if (v > 0) kl += v * (Math.log(v) - Math.log(py[j]));
      }
    }
    scores.push(Math.exp(kl / (end - start)));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits);
  return { value: mean, std, splits, n, classes: c };
}
