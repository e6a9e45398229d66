import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type LossContext, type Rng } from '@gantry/core';
import { resampleSeparable, rotateSmall, transposeWhere, type Boundary } from './resample.js';

export type AdaTransform = 'xflip' | 'rotate90' | 'xint' | 'scale' | 'rotate' | 'brightness' | 'contrast';
export const ADA_TRANSFORMS: readonly AdaTransform[] = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'brightness', 'contrast'];

/** One image's ADA parameters; identity values where a transform was not drawn. */
export interface AdaImageParams {
  /** Mirror the columns. */
  xflip: boolean;
  /** Quarter turns, 0–3. */
  quarterTurns: number;
  /** Integer translation [dy, dx] in pixels: output (i, j) shows input (i − dy, j − dx). */
  translate: [number, number];
  /** Isotropic scale: output pixel at offset d from the centre shows input at d / scale. */
  scale: number;
  /** Rotation in radians; the sampling coordinates are rotated by it. */
  angle: number;
  /** Added after the geometric transforms. */
  brightness: number;
  /** Multiplies (image + brightness). */
  contrast: number;
}

export const IDENTITY: AdaImageParams = { xflip: false, quarterTurns: 0, translate: [0, 0], scale: 1, angle: 0, brightness: 0, contrast: 1 };

/** A standard normal draw from two uniforms (Box–Muller). */
function gaussian(rng: Rng): number {
  const u = 1 - rng.uniform();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.uniform());
}

/**
 * Draws each image's parameters: every enabled transform independently with probability p, with the ranges of
 * StyleGAN2-ADA's pipeline (Karras et al. 2020): flip with ½ (so p/2 overall), k ~ U{0..3}, translation
 * round(U(−0.125, 0.125)·size) per axis, scale 2^N(0, 0.2²), angle U(−π, π), brightness N(0, 0.2²), contrast
 * 2^N(0, 0.5²). The number of draws per image is fixed, whatever p is, so p does not shift the random stream.
 */
export function drawAda(rng: Rng, p: number, batch: number, size: [number, number], enabled: ReadonlySet<AdaTransform>): AdaImageParams[] {
  const [height, width] = size;
  const out: AdaImageParams[] = [];
  for (let b = 0; b < batch; b++) {
    const params: AdaImageParams = { ...IDENTITY, translate: [0, 0] };
    const use = (t: AdaTransform) => rng.uniform() < p && enabled.has(t);
    let flip = rng.uniform() < 0.5;
    if (!use('xflip')) flip = false;
    params.xflip = flip;
    const k = rng.int(4);
    if (use('rotate90')) params.quarterTurns = k;
    const ty = Math.round((rng.uniform() * 2 - 1) * 0.125 * height);
    const tx = Math.round((rng.uniform() * 2 - 1) * 0.125 * width);
    if (use('xint')) params.translate = [ty, tx];
    const s = 2 ** (gaussian(rng) * 0.2);
    if (use('scale')) params.scale = s;
    const angle = (rng.uniform() * 2 - 1) * Math.PI;
    if (use('rotate')) params.angle = angle;
    const brightness = gaussian(rng) * 0.2;
    if (use('brightness')) params.brightness = brightness;
    const contrast = 2 ** (gaussian(rng) * 0.5);
    if (use('contrast')) params.contrast = contrast;
    out.push(params);
  }
  return out;
}

/**
 * Applies ADA's transforms with given per-image parameters to [N, H, W, C] images, resampling with linear
 * interpolation and reflect padding: quarter turns and the remaining angle (folded into [−π/4, π/4]) are split, the
 * turns done exactly by a transpose and flips; flips, turns, integer translation and scale then form one separable
 * resampling per image; the small angle takes three shears (skipped when no image has one); finally
 * contrast·(x + brightness). Only matMul, transpose and elementwise ops: differentiable in x on every backend.
 */
export function applyAda(x: tf.Tensor4D, params: readonly AdaImageParams[], boundary: Boundary = 'reflect'): tf.Tensor4D {
  const [, height, width] = x.shape;
  const turns: number[] = [];
  const small: number[] = [];
  for (const p of params) {
    const quarter = Math.round(p.angle / (Math.PI / 2));
    small.push(p.angle - quarter * (Math.PI / 2));
    turns.push((((p.quarterTurns + quarter) % 4) + 4) % 4);
  }
  return tf.tidy(() => {
    // Sampling a k-quarter turn: k = 1 reads x[j][n−1−i], 2 reads x[n−1−i][n−1−j], 3 reads x[n−1−j][i]; odd k is a
    // transpose followed by a row (k = 1) or column (k = 3) flip.
    let y = transposeWhere(x, turns.map((k) => (k % 2 === 1 ? 1 : 0)));
    const cy = (height - 1) / 2;
    const cx = (width - 1) / 2;
    const rowMaps = params.map((p, b) => {
      const flipRows = turns[b] === 1 || turns[b] === 2;
      return (i: number) => {
        const u = cy + (i - cy) / p.scale - p.translate[0];
        return flipRows ? height - 1 - u : u;
      };
    });
    const colMaps = params.map((p, b) => {
      const flipCols = (turns[b] === 2 || turns[b] === 3) !== p.xflip;
      return (j: number) => {
        const u = cx + (j - cx) / p.scale - p.translate[1];
        return flipCols ? width - 1 - u : u;
      };
    });
    const geometric = params.some((p, b) => turns[b] !== 0 || p.xflip || p.scale !== 1 || p.translate[0] !== 0 || p.translate[1] !== 0);
    if (geometric) y = resampleSeparable(y, rowMaps, colMaps, boundary);
    if (small.some((a) => a !== 0)) y = rotateSmall(y, small, boundary);
    if (params.some((p) => p.brightness !== 0 || p.contrast !== 1)) {
      const b = tf.tensor4d(params.map((p) => p.brightness), [params.length, 1, 1, 1]);
      const c = tf.tensor4d(params.map((p) => p.contrast), [params.length, 1, 1, 1]);
      y = tf.mul(tf.add(y, b), c);
    }
    return y;
  });
}

/**
 * ADA's update of p after an interval (Karras et al. 2020, §3): p ← clamp(p + sign(r_t − target)·images/(adaKimg·1000),
 * 0, 1), where r_t = E[sign(D(real))] over the interval and `images` the real images D saw in it. With adaKimg = 500,
 * p can go from 0 to 1 in 500k images.
 */
export function adaStep(p: number, rt: number, images: number, options: { target: number; adaKimg: number }): number {
  const next = p + (Math.sign(rt - options.target) * images) / (options.adaKimg * 1000);
  return Math.min(1, Math.max(0, next));
}

export interface AdaOptions {
  /** Target of the overfitting heuristic r_t = E[sign(D(real))]. Default 0.6. */
  target?: number;
  /** Thousands of images over which p may move by 1. Default 500. */
  adaKimg?: number;
  /** Steps between updates of p. Default 4 (StyleGAN2-ADA updates every 4 minibatches). */
  interval?: number;
  /** Starting p. Default 0. */
  initialP?: number;
  /** Fixed-p mode: never adapt, always use this p. */
  fixedP?: number;
  /** Transforms to draw from (default all of ADA_TRANSFORMS). */
  transforms?: readonly AdaTransform[];
  /** Padding of the geometric transforms. Default 'reflect' (as ADA). */
  boundary?: Boundary;
}

export interface AdaPlugin extends GantryPlugin {
  /** The current augmentation probability. */
  readonly p: number;
}

/**
 * Adaptive discriminator augmentation (Karras et al. 2020) as a Gantry plugin. Every image D sees (real and generated,
 * in the D and G update, and gradient-penalty inputs through `ctx.discriminate`) is augmented with probability p per
 * transform, parameters drawn from the run's seeded RNG. In each D phase r_t's batch mean E[sign(D(real))] (of the
 * augmented reals, as in ADA) is reported as `ada/rt` and p as `ada/p`; every `interval` steps the step-end values
 * move p by `adaStep`. p and the interval's partial sums are checkpointed, so a resumed run continues bit-exactly.
 */
export function ada(options: AdaOptions = {}): AdaPlugin {
  checkOptions('ada', options, ['target', 'adaKimg', 'interval', 'initialP', 'fixedP', 'transforms', 'boundary']);
  const target = options.target ?? 0.6;
  const adaKimg = options.adaKimg ?? 500;
  const interval = options.interval ?? 4;
  const boundary = options.boundary ?? 'reflect';
  const enabled = new Set(options.transforms ?? ADA_TRANSFORMS);
  for (const t of enabled) {
    if (!ADA_TRANSFORMS.includes(t)) throw new GantryError(`ada: unknown transform "${t}" (known: ${ADA_TRANSFORMS.join(', ')})`);
  }
  const fixed = options.fixedP !== undefined;
  let p = options.fixedP ?? options.initialP ?? 0;
  for (const [name, value] of [['initialP', p], ['target', target]] as const) {
    if (!(value >= 0 && value <= 1)) throw new GantryError(`ada: ${fixed && name === 'initialP' ? 'fixedP' : name} must be in [0, 1], got ${value}`);
  }
  if (!(adaKimg > 0)) throw new GantryError(`ada: adaKimg must be > 0, got ${adaKimg}`);
  if (!Number.isInteger(interval) || interval < 1) throw new GantryError(`ada: interval must be a positive integer, got ${interval}`);

  // Sums over the current interval: Σ r_t over steps and the real images D saw.
  let rtSum = 0;
  let stepsInInterval = 0;
  let imagesInInterval = 0;
  let imagesThisStep = 0;

  return definePlugin({
    name: 'ada',
    get p() {
      return p;
    },
    hooks: {
      augment: (x, ctx) => {
        if (x.rank !== 4) throw new GantryError(`ada works on image batches [N, H, W, C], got rank ${x.rank}`);
        const [batch, height, width] = x.shape;
        return applyAda(x as tf.Tensor4D, drawAda(ctx.rng, p, batch, [height, width], enabled), boundary);
      },
      lossTerms: {
        phase: 'D',
        handler: (ctx: LossContext) => {
          if (!ctx.realLogits) return;
          imagesThisStep += ctx.realLogits.shape[0];
          ctx.report('rt', tf.mean(tf.sign(ctx.realLogits)) as tf.Scalar);
          ctx.report('p', tf.scalar(p));
        },
      },
    },
    on: {
      'step:end': ({ scalars }) => {
        const images = imagesThisStep;
        imagesThisStep = 0;
        if (fixed || !(Number.isFinite(scalars['ada/rt']) && images > 0)) return;
        rtSum += scalars['ada/rt'];
        stepsInInterval += 1;
        imagesInInterval += images;
        if (stepsInInterval < interval) return;
        p = adaStep(p, rtSum / stepsInInterval, imagesInInterval, { target, adaKimg });
        rtSum = 0;
        stepsInInterval = 0;
        imagesInInterval = 0;
      },
    },
    state: {
      save: () => ({ json: { p, rtSum, stepsInInterval, imagesInInterval } }),
      load(snapshot) {
        const json = (snapshot.json ?? {}) as { p?: number; rtSum?: number; stepsInInterval?: number; imagesInInterval?: number };
        if (!fixed && json.p !== undefined) p = json.p;
        rtSum = json.rtSum ?? 0;
        stepsInInterval = json.stepsInInterval ?? 0;
        imagesInInterval = json.imagesInInterval ?? 0;
      },
    },
  });
}
