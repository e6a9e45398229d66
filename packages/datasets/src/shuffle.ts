import { GantryError, Rng } from '@gantry/core';

/** Fisher–Yates permutation of 0..n-1 drawn from `rng`. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Endless stream of index batches: each epoch is a fresh permutation seeded by (seed, epoch), batches never straddle
 * epochs (the remainder is dropped), and the stream can start at any batch number without replaying earlier ones.
 */
export function* shuffledBatchIndices(n: number, batchSize: number, rng: Rng, start = 0): Generator<number[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new GantryError(`batch size must be a positive integer, got ${batchSize}`);
  if (batchSize > n) throw new GantryError(`batch size ${batchSize} is larger than the dataset (${n} examples)`);
  const perEpoch = Math.floor(n / batchSize);
  let epoch = -1;
  let perm: Uint32Array = new Uint32Array(0);
  for (let b = start; ; b++) {
    const e = Math.floor(b / perEpoch);
    if (e !== epoch) {
      epoch = e;
      perm = permutation(n, rng.fork(e));
    }
    const offset = (b % perEpoch) * batchSize;
    yield Array.from(perm.subarray(offset, offset + batchSize));
  }
}
