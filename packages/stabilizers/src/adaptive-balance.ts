import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';

export interface AdaptiveBalanceOptions {
  /** The discriminator update is skipped while its loss (the GAN loss, before plugin terms) is below this. */
  threshold: number;
}

export interface AdaptiveBalancePlugin extends GantryPlugin {
  /** Discriminator phases skipped so far. */
  readonly skipped: number;
}

/**
 * Adaptive D/G balancing: when the discriminator is already winning (its loss below `threshold`), its update is
 * skipped so the generator can catch up. The decision uses this phase's own loss, which is read from the device
 * once per discriminator phase (a sync). Skipping hands the optimizer an empty gradient map, so no weight moves;
 * Adam's step counter still advances. Reports `adaptive-balance/skipped` (the fraction of D phases skipped).
 */
export function adaptiveBalance(options: AdaptiveBalanceOptions): AdaptiveBalancePlugin {
  checkOptions('adaptiveBalance', options, ['threshold']);
  const { threshold } = options;
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new GantryError(`adaptiveBalance threshold must be a number, got ${threshold}`);
  }
  let skipThisPhase = false;
  let skipped = 0;
  return definePlugin({
    name: 'adaptive-balance',
    get skipped() {
      return skipped;
    },
    hooks: {
      beforePhase: { phase: 'D', handler: () => void (skipThisPhase = false) },
      lossTerms: {
        phase: 'D',
        handler: (ctx) => {
          if (!ctx.realLogits) return;
          const loss = ctx.trainer.loss.discriminatorLoss(ctx.realLogits, ctx.fakeLogits);
          skipThisPhase = loss.dataSync()[0] < threshold;
          loss.dispose();
        },
      },
      transformGrads: {
        phase: 'D',
        handler: (grads, ctx) => {
          tf.tidy(() => ctx.report('skipped', tf.scalar(skipThisPhase ? 1 : 0)));
          if (!skipThisPhase) return;
          skipped += 1;
          return {};
        },
      },
    },
  });
}
