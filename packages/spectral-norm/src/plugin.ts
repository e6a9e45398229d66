import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin } from '@gantry/core';
import { spectralNormLayers } from './normalize-model.js';

export interface SpectralNormPluginOptions {
  /** Report σ of every spectrally normalized layer every N steps (after the discriminator update). Default 50. */
  every?: number;
}

/**
 * Monitors spectral normalization: checks at setup that the discriminator has SpectralNormalization layers (wrap it
 * with `spectralNormalize` before building the Trainer) and reports each layer's σ, the current estimate of its raw
 * kernel's largest singular value, as `spectral-norm/sigma/<layer>`. A σ that keeps growing means the raw weights
 * grow while the layer's effective kernel W/σ stays at norm 1.
 */
export function spectralNorm(options: SpectralNormPluginOptions = {}): GantryPlugin {
  checkOptions('spectralNorm', options, ['every']);
  const every = options.every ?? 50;
  if (!Number.isInteger(every) || every < 1) throw new GantryError(`spectralNorm: every must be a positive integer, got ${every}`);
  return definePlugin({
    name: 'spectral-norm',
    hooks: {
      setup: (trainer) => {
        if (spectralNormLayers(trainer.discriminator).length === 0) {
          throw new GantryError(
            'spectralNorm: the discriminator has no SpectralNormalization layer; wrap it with spectralNormalize(model)',
          );
        }
      },
      afterApply: {
        phase: 'D',
        every,
        handler: (ctx) => {
          // Once per step: the last critic phase.
          if (ctx.criticIndex !== ctx.trainer.nCritic - 1) return;
          // tidy: report() keeps what it needs, whether it takes the tensor or a clone of it.
          tf.tidy(() => {
            for (const layer of spectralNormLayers(ctx.trainer.discriminator)) ctx.report(`sigma/${layer.name}`, layer.sigma());
          });
        },
      },
    },
  });
}
