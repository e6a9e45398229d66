import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, rpgan, type GanLoss, type GantryPlugin } from '@gantry/core';
import { r1, r2 } from './penalties.js';

/** A value that R3GAN moves from `base` to `final` with a cosine over `images` training images. */
export interface CosineSchedule {
  base: number;
  final: number;
}

/**
 * R3GAN's small-image settings (Huang et al. 2025, "The GAN is dead; long live the GAN", the CIFAR-10 preset of the
 * authors' train.py): Adam with β₁ = 0 and ε = 1e-8 for both networks, one D update per G update, and five values
 * decayed by a cosine over 20M images: learning rate 2e-4 → 5e-5, Adam β₂ 0.9 → 0.99, γ of R1 and R2 0.05 → 0.005,
 * the generator EMA's half-life 0 → 5M images and the augmentation probability 0 → 0.55.
 */
export const R3GAN_SMALL_IMAGES = {
  decayImages: 20_000_000,
  learningRate: { base: 2e-4, final: 5e-5 },
  beta2: { base: 0.9, final: 0.99 },
  gamma: { base: 0.05, final: 0.005 },
  emaHalfLifeImages: { base: 0, final: 5_000_000 },
  augmentP: { base: 0, final: 0.55 },
} as const;

/**
 * R3GAN's schedule value after `imagesSeen` training images: base + (1 − ½(1 + cos(π·t/T)))·(final − base), held at
 * `final` past T (the authors' cosine_decay_with_warmup without warm-up).
 */
export function cosineSchedule(schedule: CosineSchedule, imagesSeen: number, totalImages: number): number {
  if (imagesSeen >= totalImages) return schedule.final;
  const decay = 0.5 * (1 + Math.cos((Math.PI * imagesSeen) / totalImages));
  return schedule.base + (1 - decay) * (schedule.final - schedule.base);
}

/** The five scheduled R3GAN values after `imagesSeen` images (see R3GAN_SMALL_IMAGES). */
export function r3ganSchedule(imagesSeen: number): {
  learningRate: number;
  beta2: number;
  gamma: number;
  emaHalfLifeImages: number;
  augmentP: number;
} {
  const s = R3GAN_SMALL_IMAGES;
  const at = (c: CosineSchedule) => cosineSchedule(c, imagesSeen, s.decayImages);
  return {
    learningRate: at(s.learningRate),
    beta2: at(s.beta2),
    gamma: at(s.gamma),
    emaHalfLifeImages: at(s.emaHalfLifeImages),
    augmentP: at(s.augmentP),
  };
}

/**
 * The decay β of an EMA with a half-life of `halfLifeImages` images at `batchSize` images per update:
 * β = 0.5^(batchSize / halfLife), as StyleGAN2 and R3GAN compute it. Pass it to @gantry/stabilizers' `ema({ beta })`.
 */
export function emaBetaForHalfLife(halfLifeImages: number, batchSize: number): number {
  if (!(halfLifeImages >= 0) || !(batchSize > 0)) {
    throw new GantryError(`emaBetaForHalfLife: need halfLifeImages ≥ 0 and batchSize > 0, got ${halfLifeImages}, ${batchSize}`);
  }
  return halfLifeImages === 0 ? 0 : 0.5 ** (batchSize / halfLifeImages);
}

export interface R3ganOptions {
  /** γ of both R1 and R2 ((γ/2)·E‖∇D‖² each). Default: the schedule's value at `imagesSeen`. */
  gamma?: number;
  /** Where on R3GAN's 20M-image schedule to take the learning rate, β₂ and γ. Default 0 (the base values). */
  imagesSeen?: number;
}

/** What the R3GAN preset contributes to Trainer options: spread it in, adding your own plugins after `plugins`. */
export interface R3ganPreset {
  loss: GanLoss;
  nCritic: number;
  optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  plugins: GantryPlugin[];
}

/**
 * The R3GAN objective with its small-image optimizer settings: RpGAN + R1 + R2 with one γ, Adam(lr, β₁ = 0, β₂,
 * ε = 1e-8), one D update per G update. Values are constants taken at `imagesSeen` on the authors' 20M-image cosine
 * schedule: a run of a few hundred thousand images moves them by less than 0.1%, so Gantry does not schedule them.
 * The generator EMA is left to the caller (`ema({ beta: emaBetaForHalfLife(…) })`): R3GAN ramps its half-life from 0.
 * A function, so every Trainer gets fresh optimizer state.
 */
export function r3ganDefaults(options: R3ganOptions = {}): R3ganPreset {
  checkOptions('r3ganDefaults', options, ['gamma', 'imagesSeen']);
  const imagesSeen = options.imagesSeen ?? 0;
  if (!(imagesSeen >= 0)) throw new GantryError(`r3ganDefaults: imagesSeen must be ≥ 0, got ${imagesSeen}`);
  const scheduled = r3ganSchedule(imagesSeen);
  const gamma = options.gamma ?? scheduled.gamma;
  const adam = () => tf.train.adam(scheduled.learningRate, 0, scheduled.beta2, 1e-8);
  return {
    loss: rpgan(),
    nCritic: 1,
    optimizers: { generator: adam(), discriminator: adam() },
    plugins: [r1({ gamma }), r2({ gamma })],
  };
}
