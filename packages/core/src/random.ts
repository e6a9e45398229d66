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

/** FNV-1a over UTF-16 code units: a stream name to a 32-bit salt. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
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

  /**
   * An independent stream that does not disturb this one, derived from this seed and `salt` only (not from what was
   * drawn): a number (data shuffling) or a name (a plugin's stream).
   */
  fork(salt: number | string): Rng {
    const n = typeof salt === 'string' ? hashString(salt) : salt;
    return new Rng(mix32(this.seed ^ mix32(n + 0x85ebca6b)) | 0);
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
 * A trainer's random streams: `core` for latents (the data order is a fork of it) and one per plugin, derived from the
 * seed and the plugin's name. Adding, removing or reordering plugins therefore changes no other stream, and a plugin
 * drawing more or less leaves the core's latents and data order as they were. Checkpoints store every counter.
 */
export class RandomStreams {
  readonly core: Rng;
  private readonly plugins = new Map<string, Rng>();

  constructor(seed: number, pluginNames: readonly string[]) {
    this.core = new Rng(seed);
    for (const name of pluginNames) this.plugins.set(name, this.core.fork(`plugin:${name}`));
  }

  /** The stream of the plugin named `name` (listed in the trainer's plugins). */
  plugin(name: string): Rng {
    const rng = this.plugins.get(name);
    if (!rng) throw new Error(`no random stream for plugin "${name}": it is not one of the trainer's plugins`);
    return rng;
  }

  /** The core's state and the counters of the plugin streams that have drawn (an absent plugin's counter is 0). */
  getState(): RandomStreamsState {
    const drawn = [...this.plugins].map(([name, rng]) => [name, rng.getState().counter] as const).filter(([, counter]) => counter > 0);
    return { core: this.core.getState(), plugins: Object.fromEntries(drawn) };
  }

  /**
   * Puts every stream where the saved run had it. A plugin the checkpoint does not know (added on resume) starts its
   * stream from the beginning; one that is no longer listed is ignored.
   */
  setState(state: RandomStreamsState): void {
    this.core.setState(state.core);
    for (const [name, rng] of this.plugins) rng.setState({ seed: rng.seed, counter: state.plugins[name] ?? 0 });
  }
}

export interface RandomStreamsState {
  core: RngState;
  /** Draws taken so far by each plugin's stream that has drawn. */
  plugins: Record<string, number>;
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
