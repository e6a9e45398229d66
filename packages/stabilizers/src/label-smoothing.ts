import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';

export interface LabelSmoothingOptions {
  /** Target for real samples in the discriminator loss (Salimans et al. 2016 use 0.9). Fake targets stay 0. */
  target?: number;
}

/**
 * The term that turns a standard discriminator loss with real target 1 into the same loss with real target `t`,
 * exactly (not approximately), for the losses that have label targets:
 *   BCE:           BCE(x, t) − BCE(x, 1) = (1 − t)·mean(x)        (softplus(x) − t·x, averaged)
 *   least squares: ½(x − t)² − ½(x − 1)² = (1 − t)·(mean(x) − (1 + t)/2)
 */
export function realTargetCorrection(lossName: string, target: number): (realLogits: tf.Tensor) => tf.Scalar {
  switch (lossName) {
    case 'minimax':
    case 'non-saturating':
      return (r) => tf.tidy(() => tf.mul(tf.mean(r), 1 - target) as tf.Scalar);
    case 'least-squares':
      return (r) => tf.tidy(() => tf.mul(tf.sub(tf.mean(r), (1 + target) / 2), 1 - target) as tf.Scalar);
    default:
      throw new GantryError(
        `labelSmoothing works with the minimax, non-saturating and least-squares losses, not "${lossName}" (hinge and Wasserstein critics have no label targets)`,
      );
  }
}

/**
 * One-sided label smoothing (Salimans et al. 2016): the discriminator is trained towards 0.9 instead of 1 on real
 * samples, which keeps it from growing overconfident; fake targets stay at 0 (smoothing them would reward the
 * generator for samples far from the data). Adds an exact correction term to the D loss, reported as
 * `D/label-smoothing`; `d_loss` plus that term is the smoothed loss.
 */
export function labelSmoothing(options: LabelSmoothingOptions = {}): GantryPlugin {
  checkOptions('labelSmoothing', options, ['target']);
  const target = options.target ?? 0.9;
  if (!(target > 0 && target <= 1)) throw new GantryError(`labelSmoothing target must be in (0, 1], got ${target}`);
  let correction: ((realLogits: tf.Tensor) => tf.Scalar) | undefined;
  return definePlugin({
    name: 'label-smoothing',
    hooks: {
      setup(trainer) {
        correction = realTargetCorrection(trainer.loss.name, target);
      },
      lossTerms: {
        phase: 'D',
        handler: (ctx) => {
          if (!ctx.realLogits) return;
          correction ??= realTargetCorrection(ctx.trainer.loss.name, target);
          return correction(ctx.realLogits);
        },
      },
    },
  });
}
