/**
 * An opt-in fast N(0, 1) generator: xoshiro128** uniforms (Blackman and Vigna 2018, 32-bit integer ops) feeding a
 * 128-strip ziggurat (Marsaglia and Tsang 2000) with Doornik's (2005) fix of taking the strip index and the uniform
 * from separate bits, and Marsaglia's exact method for the tail. About one 32-bit draw, one multiply and one compare
 * per value. It draws other numbers than `tf.randomNormal`, which is why the default stays `normalValues`.
 */

/** Strips of the ziggurat: the index takes the low 7 bits of a draw, the uniform the other 25. */
export const ZIGGURAT_STRIPS = 128;

/** f(x) = exp(−x²/2): the normal density without its constant, which the ziggurat does not need. */
const density = (x: number) => Math.exp(-0.5 * x * x);

/**
 * ∫_r^∞ exp(−x²/2) dx = f(r)·R(r), R the Mills ratio as the continued fraction 1/(r + 1/(r + 2/(r + 3/(r + …)))),
 * evaluated bottom-up; 200 terms are exact to double precision for r ≥ 2 (the tails solved for here are near 3.44).
 */
export function normalTailArea(r: number): number {
  let fraction = r;
  for (let k = 200; k >= 1; k--) fraction = r + k / fraction;
  return density(r) / fraction;
}

/**
 * The strips' right edges for a tail edge r: x[1] = r, x[i+1] = f⁻¹(f(x[i]) + v/x[i]) so that every strip has area
 * v = r·f(r) + tail(r), and x[0] = v/f(r), the width of a rectangle as large as the base strip with its tail.
 * Returns f(x[N−1]) + v/x[N−1], the height the top strip reaches, which is 1 = f(0) for the right r (above 1 or
 * NaN: r too small).
 */
function stripEdges(r: number, x: Float64Array): number {
  const v = r * density(r) + normalTailArea(r);
  x[0] = v / density(r);
  x[1] = r;
  for (let i = 1; i < ZIGGURAT_STRIPS - 1; i++) {
    const y = density(x[i]) + v / x[i];
    if (!(y < 1)) return Number.POSITIVE_INFINITY;
    x[i + 1] = Math.sqrt(-2 * Math.log(y));
  }
  return density(x[ZIGGURAT_STRIPS - 1]) + v / x[ZIGGURAT_STRIPS - 1];
}

/**
 * The ziggurat's tables, computed from their definition at load: r solved by bisection so the top strip ends at
 * f(0) = 1 (a larger r leaves it short of 1, a smaller one overshoots), then the edges for that r.
 */
function zigguratTables() {
  const edges = new Float64Array(ZIGGURAT_STRIPS + 1); // edges[N] = 0: the top strip's inner edge is the axis
  let low = 2;
  let high = 5;
  for (let k = 0; k < 200 && high - low > 0; k++) {
    const mid = 0.5 * (low + high);
    if (mid === low || mid === high) break;
    if (stripEdges(mid, edges) > 1) low = mid;
    else high = mid;
  }
  stripEdges(high, edges);
  const heights = edges.map(density); // heights[i] = f(edges[i]); heights[N] = 1
  return { r: high, area: high * density(high) + normalTailArea(high), edges, heights };
}

/** x[0..N] (x[1] = r, x[N] = 0), f(x[i]), r and the common strip area v: for tests and the README. */
export const ziggurat = zigguratTables();

const { edges, heights } = ziggurat;
const TAIL_EDGE = ziggurat.r;
/** Scales a signed 25-bit integer k to x = (k + ½)·2⁻²⁴·x[i]: a uniform in (−x[i], x[i]), symmetric, never 0. */
const STEP = new Float64Array(ZIGGURAT_STRIPS).map((_, i) => edges[i] * 2 ** -24);
const UNIT = 2 ** -32;

/** xoshiro128** state from a 32-bit seed: four words of the murmur3 finalizer over seed + k·golden ratio (never all 0). */
function seedState(seed: number): Uint32Array {
  const state = new Uint32Array(4);
  for (let k = 0; k < 4; k++) {
    let h = (seed + Math.imul(k + 1, 0x9e3779b9)) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    state[k] = h ^ (h >>> 16);
  }
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;
  return state;
}

/** One xoshiro128** step on `s` (in place); returns the output word as a signed 32-bit integer. */
function nextInt32(s: Uint32Array): number {
  const s1 = s[1];
  const m = Math.imul(s1, 5);
  const out = Math.imul((m << 7) | (m >>> 25), 9);
  const t = s1 << 9;
  s[2] ^= s[0];
  s[3] ^= s1;
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 11) | (s[3] >>> 21);
  return out;
}

/** A uniform in (0, 1): never 0, so its logarithm is finite. */
const openUnit = (s: Uint32Array) => ((nextInt32(s) >>> 0) + 0.5) * UNIT;

/**
 * The slow path (about 1.2% of draws): `x` fell outside strip `strip`'s inner rectangle. The base strip's overhang
 * is the tail beyond r, drawn exactly (Marsaglia 1964: x = −ln U₁/r, y = −ln U₂ until 2y > x², then r + x); any other
 * strip accepts x when a uniform height in [f(x[i]), f(x[i+1])] lies under f(x). Returns NaN for "rejected, draw again".
 */
function outsideRectangle(s: Uint32Array, strip: number, x: number): number {
  if (strip === 0) {
    let tail: number;
    let y: number;
    do {
      tail = -Math.log(openUnit(s)) / TAIL_EDGE;
      y = -Math.log(openUnit(s));
    } while (y + y <= tail * tail);
    return x < 0 ? -(TAIL_EDGE + tail) : TAIL_EDGE + tail;
  }
  const height = heights[strip] + openUnit(s) * (heights[strip + 1] - heights[strip]);
  return height < density(x) ? x : Number.NaN;
}

/** Strip index (low 7 bits) and x = (k + ½)·2⁻²⁴·x[i] for the signed 25-bit k in the other bits of a draw. */
const stripOf = (word: number) => word & (ZIGGURAT_STRIPS - 1);
const uniformInStrip = (word: number, strip: number) => ((word >> 7) + 0.5) * STEP[strip];

/** One N(0, 1) value by the whole ziggurat, drawing from `s`: the fallback when a wedge rejected a value. */
function oneNormal(s: Uint32Array): number {
  for (;;) {
    const word = nextInt32(s);
    const strip = stripOf(word);
    const x = uniformInStrip(word, strip);
    if (Math.abs(x) < edges[strip + 1]) return x;
    const value = outsideRectangle(s, strip, x);
    if (value === value) return value;
  }
}

/** Values are drawn in chunks of this many; those outside their strip's inner rectangle then take the slow path. */
const PENDING = 4096;

/**
 * `count` float32 draws of N(mean, stdDev²) from `seed` by the ziggurat above (xoshiro128** seeded by the murmur3
 * finalizer). Deterministic for a seed, not `tf.randomNormal`'s numbers; several times faster than `normalValues`.
 *
 * The inner loop holds the generator's state in locals and makes no call: a draw outside its strip's rectangle
 * (about 1.2%) only notes its position and word, and those are finished in a batch afterwards from the same stream.
 */
export function fastNormalValues(count: number, mean: number, stdDev: number, seed: number): Float32Array {
  const s = seedState(seed);
  const out = new Float32Array(count);
  const pendingAt = new Int32Array(PENDING);
  const pendingWord = new Int32Array(PENDING);
  // Module constants read through locals: V8 then keeps them in registers instead of reloading (and hole-checking)
  // them on every value (7.3 → 5.1 ns per value).
  const step = STEP;
  const edge = edges;
  const stripMask = ZIGGURAT_STRIPS - 1;
  let i = 0;
  while (i < count) {
    let s0 = s[0] | 0;
    let s1 = s[1] | 0;
    let s2 = s[2] | 0;
    let s3 = s[3] | 0;
    let pending = 0;
    // A chunk of at most PENDING values cannot overflow the pending list.
    const end = Math.min(count, i + PENDING);
    for (; i < end; i++) {
      // nextInt32's step, on locals.
      const m = Math.imul(s1, 5);
      const word = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const strip = word & stripMask;
      const x = ((word >> 7) + 0.5) * step[strip];
      if (Math.abs(x) < edge[strip + 1]) {
        out[i] = x;
      } else {
        pendingAt[pending] = i;
        pendingWord[pending++] = word;
      }
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    for (let k = 0; k < pending; k++) {
      const strip = stripOf(pendingWord[k]);
      let value = outsideRectangle(s, strip, uniformInStrip(pendingWord[k], strip));
      if (value !== value) value = oneNormal(s); // rejected in a wedge: a fresh strip and uniform
      out[pendingAt[k]] = value;
    }
  }
  // N(mean, stdDev²) as mean + stdDev·z of the float32 z, in a pass of its own and only when asked: in the loop the
  // affine step cost a tenth of the time per value even for latents' (0, 1).
  if (mean !== 0 || stdDev !== 1) for (let i = 0; i < count; i++) out[i] = mean + stdDev * out[i];
  return out;
}

export { nextInt32 as xoshiroNext, seedState as xoshiroSeed };
