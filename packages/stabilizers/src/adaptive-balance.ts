import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';

export interface AdaptiveBalanceOptions {
  /** A step's discriminator updates are skipped while the last step's D loss (the GAN loss) is below this. */
  threshold: number;
}

export interface AdaptiveBalancePlugin extends GantryPlugin {
  /** Discriminator phases skipped so far. */
  readonly skipped: number;
}

/**
 * Adaptive D/G balancing: when the discriminator is already winning (the last step's `d_loss`, the GAN loss before
 * plugin terms averaged over that step's critic phases, below `threshold`), this step's discriminator updates are
 * skipped so the generator can catch up. The decision reads the number the trainer already reads at each step's end
 * (`step:end`), so it costs no device read of its own and works where reads must be asynchronous (WebGPU); the
 * first step (and the first after a resume without saved state) never skips. A skipped update (the `skipUpdate` hook)
 * never reaches the optimizer, so no weight moves and Adam's state stays as it was. Reports `adaptive-balance/skipped` (the fraction
 * of D phases skipped).
 */
export function adaptiveBalance(options: AdaptiveBalanceOptions): AdaptiveBalancePlugin {
  checkOptions('adaptiveBalance', options, ['threshold']);
  const { threshold } = options;
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new GantryError(`adaptiveBalance threshold must be a number, got ${threshold}`);
  }
  let lastDLoss: number | undefined;
  let skipped = 0;
  const skipNow = () => lastDLoss !== undefined && lastDLoss < threshold;
  return definePlugin({
    name: 'adaptive-balance',
    get skipped() {
      return skipped;
    },
    on: {
      'step:end': (e) => {
        if (e.scalars.d_loss !== undefined) lastDLoss = e.scalars.d_loss;
      },
    },
    hooks: {
      skipUpdate: {
        phase: 'D',
        handler: (ctx) => {
          const skip = skipNow();
          tf.tidy(() => ctx.report('skipped', tf.scalar(skip ? 1 : 0)));
          if (skip) skipped += 1;
          return skip;
        },
      },
    },
    state: {
      save: () => ({ json: { lastDLoss: lastDLoss ?? null, skipped } }),
      load: (snapshot) => {
        const saved = snapshot.json as { lastDLoss?: number | null; skipped?: number } | undefined;
        lastDLoss = saved?.lastDLoss ?? undefined;
        skipped = saved?.skipped ?? 0;
      },
    },
  });
}
