import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';

export interface WeightClippingOptions {
  /** Clip every trainable critic weight to [−c, c]. WGAN paper: 0.01. */
  c?: number;
}

/** Clips each trainable weight of `model` to [−c, c] in place. */
export function clipWeights(model: LayersModel, c: number): void {
  tf.tidy(() => {
    for (const weight of model.trainableWeights) weight.write(tf.clipByValue(weight.read(), -c, c));
  });
}

/**
 * WGAN weight clipping (Arjovsky et al. 2017): after every critic update, each trainable weight of the critic
 * (kernels, biases, normalization scales) is clipped to [−c, c], which keeps the critic K-Lipschitz for some K.
 * The weights are also clipped once at setup, so the first critic pass already obeys the bound.
 * Non-trainable weights (batch-norm statistics, spectral-norm vectors) are left alone.
 */
export function weightClipping(options: WeightClippingOptions = {}): GantryPlugin {
  checkOptions('weightClipping', options, ['c']);
  const c = options.c ?? 0.01;
  if (!(c > 0) || !Number.isFinite(c)) throw new GantryError(`weightClipping: c must be a positive number, got ${c}`);
  return definePlugin({
    name: 'weight-clipping',
    hooks: {
      setup: (trainer) => clipWeights(trainer.discriminator, c),
      afterApply: { phase: 'D', handler: (ctx) => clipWeights(ctx.trainer.discriminator, c) },
    },
  });
}
