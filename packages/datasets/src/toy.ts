import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, randomNormal, type Batch, type DataSource } from '@gantry/core';

export interface Mixture2D extends DataSource {
  /** Mode centres, [x, y] each. */
  readonly centers: readonly (readonly [number, number])[];
  /** Standard deviation of every mode. */
  readonly std: number;
}

function mixture(name: string, centers: [number, number][], std: number): Mixture2D {
  return {
    name,
    elementShape: [2],
    valueRange: null,
    centers,
    std,
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      // Batch b draws from seeds derived from (seed, b): a pure function of the batch number, so resume is exact.
      for (let b = start; ; b++) {
        yield {
          x: tf.tidy(() => {
            // float32 rounding can turn a draw just below `modes` into `modes`; clamp to the last index.
            const which = tf.minimum(
              tf.cast(
                tf.floor(tf.randomUniform([batchSize], 0, centers.length, 'float32', (seed ^ Math.imul(b, 0x9e3779b1)) >>> 0)),
                'int32',
              ),
              tf.scalar(centers.length - 1, 'int32'),
            );
            const noise = randomNormal([batchSize, 2], (seed + b * 7919 + 1) >>> 0, 0, std); // tf.randomNormal's numbers
            return tf.add(tf.gather(tf.tensor2d(centers), which), noise);
          }),
        };
      }
    },
  };
}

/** Ring of Gaussians (Metz et al. 2017): `modes` centres on a circle of `radius`, each with std `std`. */
export function ring(options: { modes?: number; radius?: number; std?: number } = {}): Mixture2D {
  checkOptions('ring()', options, ['modes', 'radius', 'std']);
  const { modes = 8, radius = 2, std = 0.02 } = options;
  if (modes < 1) throw new GantryError('ring(): modes must be ≥ 1');
  const centers = Array.from({ length: modes }, (_, k): [number, number] => [
    radius * Math.cos((2 * Math.PI * k) / modes),
    radius * Math.sin((2 * Math.PI * k) / modes),
  ]);
  return mixture(`ring-${modes}`, centers, std);
}

/** size × size grid of Gaussians centred on the origin, `spacing` apart (5×5, spacing 2: centres at −4…4). */
export function grid(options: { size?: number; spacing?: number; std?: number } = {}): Mixture2D {
  checkOptions('grid()', options, ['size', 'spacing', 'std']);
  const { size = 5, spacing = 2, std = 0.02 } = options;
  const half = ((size - 1) * spacing) / 2;
  const centers: [number, number][] = [];
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) centers.push([i * spacing - half, j * spacing - half]);
  return mixture(`grid-${size}x${size}`, centers, std);
}

export interface ModeCount {
  /** Modes holding at least `minCount` high-quality samples (default 1% of N: the strict count). */
  covered: number;
  /**
   * Modes holding at least one high-quality sample: "the number of mixture components whose mean is nearest to at
   * least one high quality sample" (Srivastava et al. 2017, VEEGAN; PacGAN counts the same way).
   */
  coveredByAny: number;
  modes: number;
  /** Fraction of samples within 3σ of their nearest centre ("high-quality samples", Srivastava et al. 2017). */
  highQuality: number;
  /** High-quality samples per mode. */
  perMode: number[];
  /** The per-mode count a mode needed for `covered`. */
  minCount: number;
}

/**
 * Counts covered modes: each sample goes to its nearest centre if it lies within 3σ of it (a high-quality sample);
 * a mode is `covered` when it holds at least `minCount` of them (default: 1% of N, at least 1) and `coveredByAny`
 * when it holds at least one (VEEGAN's count: with 2500 samples one stray sample counts a mode).
 */
export function countModes(samples: ArrayLike<number>, mix: Pick<Mixture2D, 'centers' | 'std'>, minCount?: number): ModeCount {
  if (samples.length % 2 !== 0) throw new GantryError(`countModes: expected [x, y] pairs, got ${samples.length} values`);
  const n = samples.length / 2;
  const threshold = minCount ?? Math.max(1, Math.ceil(0.01 * n));
  const perMode = new Array<number>(mix.centers.length).fill(0);
  let good = 0;
  for (let i = 0; i < n; i++) {
    const x = samples[2 * i];
    const y = samples[2 * i + 1];
    let best = -1;
    let bestDist = Infinity;
    mix.centers.forEach(([cx, cy], k) => {
      const d = Math.hypot(x - cx, y - cy);
      if (d < bestDist) [best, bestDist] = [k, d];
    });
    if (bestDist <= 3 * mix.std) {
      perMode[best] += 1;
      good += 1;
    }
  }
  return {
    covered: perMode.filter((c) => c >= threshold).length,
    coveredByAny: perMode.filter((c) => c > 0).length,
    modes: mix.centers.length,
    highQuality: n ? good / n : 0,
    perMode,
    minCount: threshold,
  };
}
