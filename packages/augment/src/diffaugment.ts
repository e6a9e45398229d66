import * as tf from '@tensorflow/tfjs-core';
import { GantryError, definePlugin, type GantryPlugin, type Rng } from '@gantry/core';
import { resampleSeparable } from './resample.js';

export type DiffAugmentPolicy = 'color' | 'translation' | 'cutout';
const POLICIES: readonly DiffAugmentPolicy[] = ['color', 'translation', 'cutout'];

/** Per-image parameters of one DiffAugment call (drawn by `drawDiffAugment`, or given in tests). */
export interface DiffAugmentParams {
  /** color: added to every pixel, U(−0.5, 0.5). */
  brightness?: number[];
  /** color: deviations from the per-pixel channel mean scaled by U(0, 2) (identity on one channel). */
  saturation?: number[];
  /** color: deviations from the image mean scaled by U(0.5, 1.5). */
  contrast?: number[];
  /** translation: [dy, dx] integers in [−s, s], s = round(size/8); output pixel (i, j) shows input (i − dy, j − dx), zeros outside. */
  translation?: [number, number][];
  /** cutout: [cy, cx] offsets in [0, size − size/2 mod 2]; rows cy − ⌊h/2⌋ … cy − ⌊h/2⌋ + h − 1 (clipped) are zeroed, h = round(size/2). */
  cutout?: [number, number][];
}

/** Parses 'color,translation,cutout' or an array of policy names. */
export function parsePolicy(policy: string | readonly string[]): DiffAugmentPolicy[] {
  const names = (typeof policy === 'string' ? policy.split(',') : [...policy]).map((p) => p.trim()).filter(Boolean);
  for (const name of names) {
    if (!POLICIES.includes(name as DiffAugmentPolicy)) {
      throw new GantryError(`diffAugment: unknown policy "${name}" (known: ${POLICIES.join(', ')})`);
    }
  }
  if (names.length === 0) throw new GantryError(`diffAugment: the policy is empty (use some of ${POLICIES.join(', ')})`);
  return names as DiffAugmentPolicy[];
}

const translationRange = (size: number) => Math.floor(size * 0.125 + 0.5);
const cutoutSize = (size: number) => Math.floor(size * 0.5 + 0.5);

/** Draws one call's parameters for `batch` images of `height`×`width` from the run's RNG (Zhao et al. 2020's ranges). */
export function drawDiffAugment(rng: Rng, policy: readonly DiffAugmentPolicy[], batch: number, height: number, width: number): DiffAugmentParams {
  const params: DiffAugmentParams = {};
  const each = <T>(f: () => T) => Array.from({ length: batch }, f);
  const intIn = (lo: number, hi: number) => lo + rng.int(hi - lo + 1);
  for (const p of policy) {
    if (p === 'color') {
      params.brightness = each(() => rng.uniform() - 0.5);
      params.saturation = each(() => rng.uniform() * 2);
      params.contrast = each(() => rng.uniform() + 0.5);
    } else if (p === 'translation') {
      const [sy, sx] = [translationRange(height), translationRange(width)];
      params.translation = each(() => [intIn(-sy, sy), intIn(-sx, sx)]);
    } else {
      const [hy, hx] = [cutoutSize(height), cutoutSize(width)];
      params.cutout = each(() => [intIn(0, height - (hy % 2)), intIn(0, width - (hx % 2))]);
    }
  }
  return params;
}

/** 1 everywhere except each image's cutout rectangle: a [B, H, W, 1] mask. */
function cutoutMask(offsets: readonly [number, number][], height: number, width: number): tf.Tensor4D {
  const [hy, hx] = [cutoutSize(height), cutoutSize(width)];
  const mask = new Float32Array(offsets.length * height * width).fill(1);
  offsets.forEach(([cy, cx], b) => {
    for (let i = Math.max(0, cy - Math.floor(hy / 2)); i <= Math.min(height - 1, cy - Math.floor(hy / 2) + hy - 1); i++) {
      for (let j = Math.max(0, cx - Math.floor(hx / 2)); j <= Math.min(width - 1, cx - Math.floor(hx / 2) + hx - 1); j++) {
        mask[(b * height + i) * width + j] = 0;
      }
    }
  });
  return tf.tensor4d(mask, [offsets.length, height, width, 1]);
}

const perImage = (values: readonly number[]) => tf.tensor4d([...values], [values.length, 1, 1, 1]);

/**
 * Applies DiffAugment with given parameters, in the original order: brightness, saturation, contrast, translation,
 * cutout. Differentiable with respect to x (elementwise ops and matMul only).
 */
export function applyDiffAugment(x: tf.Tensor4D, params: DiffAugmentParams): tf.Tensor4D {
  const [, height, width] = x.shape;
  return tf.tidy(() => {
    let y: tf.Tensor4D = x;
    if (params.brightness) y = tf.add(y, perImage(params.brightness));
    if (params.saturation) {
      const mean = tf.mean(y, 3, true);
      y = tf.add(tf.mul(tf.sub(y, mean), perImage(params.saturation)), mean);
    }
    if (params.contrast) {
      const mean = tf.mean(y, [1, 2, 3], true);
      y = tf.add(tf.mul(tf.sub(y, mean), perImage(params.contrast)), mean);
    }
    if (params.translation) {
      const t = params.translation;
      y = resampleSeparable(
        y,
        t.map(([dy]) => (i: number) => i - dy),
        t.map(([, dx]) => (j: number) => j - dx),
        'zero',
      );
    }
    if (params.cutout) y = tf.mul(y, cutoutMask(params.cutout, height, width));
    return y;
  });
}

export interface DiffAugmentOptions {
  /** Policies applied in order; default 'color,translation,cutout' (the paper's choice with 10–20% of the data). */
  policy?: string | readonly string[];
}

/**
 * DiffAugment (Zhao et al. 2020) as a Gantry plugin: the same family of differentiable transforms on every image D
 * sees (real and generated, in the D and the G update, and the inputs of gradient penalties), with fresh parameters
 * per batch drawn from the run's seeded RNG, so runs are reproducible and resume bit-exactly.
 */
export function diffAugment(options: DiffAugmentOptions = {}): GantryPlugin {
  for (const key of Object.keys(options)) {
    if (key !== 'policy') throw new GantryError(`diffAugment: unknown option "${key}" (known: policy)`);
  }
  const policy = parsePolicy(options.policy ?? 'color,translation,cutout');
  return definePlugin({
    name: 'diffaugment',
    hooks: {
      augment: (x, ctx) => {
        if (x.rank !== 4) throw new GantryError(`diffAugment works on image batches [N, H, W, C], got rank ${x.rank}`);
        const [batch, height, width] = x.shape;
        return applyDiffAugment(x as tf.Tensor4D, drawDiffAugment(ctx.rng, policy, batch, height, width));
      },
    },
  });
}
