import { Rng } from '@gantry/core';
import { FidError } from './errors.js';
import { featureRows, type FeatureBatch } from './stats.js';

/** A feature set held in memory: N rows of `dims` float32 values, row-major. */
export interface FeatureSet {
  data: Float32Array;
  n: number;
  dims: number;
}

/** Wraps features ([N, D] tensor, flat array with dims, or a FeatureSet) as a FeatureSet (tensor data is copied). */
export function toFeatureSet(features: FeatureBatch | FeatureSet, dims?: number): FeatureSet {
  if (isFeatureSet(features)) return features;
  const { data, rows, dims: d } = featureRows(features, dims);
  return { data: data instanceof Float32Array ? data : Float32Array.from(data), n: rows, dims: d };
}

function isFeatureSet(x: unknown): x is FeatureSet {
  return typeof x === 'object' && x !== null && (x as FeatureSet).data instanceof Float32Array && 'n' in x && 'dims' in x;
}

/** Gathers rows `indices` of a feature set into a float64 block (rows × dims). */
export function gatherRows(set: FeatureSet, indices: ArrayLike<number>, out?: Float64Array): Float64Array {
  const d = set.dims;
  const block = out ?? new Float64Array(indices.length * d);
  for (let r = 0; r < indices.length; r++) {
    const src = indices[r] * d;
    const dst = r * d;
    for (let j = 0; j < d; j++) block[dst + j] = set.data[src + j];
  }
  return block;
}

/** Rows start … end−1 of a feature set as a float64 block. */
export function sliceRows(set: FeatureSet, start: number, end: number): Float64Array {
  return Float64Array.from(set.data.subarray(start * set.dims, end * set.dims));
}

/** `m` distinct indices from 0 … n−1 in random order (partial Fisher–Yates on a seeded stream). */
export function sampleWithoutReplacement(n: number, m: number, rng: Rng): Int32Array {
  if (m > n) throw new FidError(`cannot draw ${m} distinct samples from ${n}`);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, m);
}

export function checkSameDims(a: FeatureSet, b: FeatureSet): void {
  if (a.dims !== b.dims) throw new FidError(`cannot compare ${a.dims}-dim features with ${b.dims}-dim features`);
}
