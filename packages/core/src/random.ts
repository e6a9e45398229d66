/**
 * Seeded, counter-based randomness. Every draw derives a fresh 32-bit seed from (seed, counter), so the whole
 * state is two integers: checkpoints store them and a resumed run draws exactly what the uninterrupted run would.
 */
export interface RngState {
  seed: number;
  counter: number;
}

function mix32(a: number): number {
  // splitmix32 finalizer: cheap, well-distributed bits from a counter.
  a = Math.imul(a ^ (a >>> 16), 0x21f0aaad);
  a = Math.imul(a ^ (a >>> 15), 0x735a2d97);
  return (a ^ (a >>> 15)) >>> 0;
}

export class Rng {
  private counter = 0;
  constructor(readonly seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  }

  /** A fresh 32-bit seed for one tfjs random op (tf.randomNormal(..., seed)). */
  nextSeed(): number {
    return mix32((this.seed * 0x9e3779b1) ^ mix32(this.counter++ + 0x6d2b79f5));
  }

  /** A float in [0, 1). */
  uniform(): number {
    return this.nextSeed() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** An independent stream, e.g. for data shuffling, that does not disturb this one. */
  fork(salt: number): Rng {
    return new Rng(mix32(this.seed ^ mix32(salt + 0x85ebca6b)) | 0);
  }

  getState(): RngState {
    return { seed: this.seed, counter: this.counter };
  }

  setState(state: RngState): void {
    if (state.seed !== this.seed) throw new Error(`RNG state is for seed ${state.seed}, this RNG has seed ${this.seed}`);
    this.counter = state.counter;
  }
}

/**
 * Runs `fn` with Math.random replaced by a seeded generator. tfjs-layers initializers without an explicit seed draw
 * their seed from Math.random, so building models inside this scope makes the initial weights reproducible.
 */
export function withSeed<T>(seed: number, fn: () => T): T {
  const rng = new Rng(seed);
  const original = Math.random;
  Math.random = () => rng.uniform();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
