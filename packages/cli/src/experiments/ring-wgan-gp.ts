import * as tf from '@tensorflow/tfjs-core';
import { Rng, definePlugin, type GantryPlugin } from '@gantry/core';
import { countModes, ring, type Mixture2D } from '@gantry/datasets';
import { gradientPenalty, wgan } from '@gantry/loss-wgan';
import { ringDiscriminator, ringGenerator } from './ring-gan.js';
import { defineExperiment } from './types.js';

/**
 * Every `every` steps, draws `samples` points from the sampling generator with fixed noise and emits an `eval` event
 * with the mode coverage of the mixture: `modes_covered` (modes with ≥ 1% of the samples within 3σ) and
 * `high_quality` (fraction of samples within 3σ of a centre).
 */
export function modeCoverage(mix: Mixture2D, options: { every?: number; samples?: number } = {}): GantryPlugin {
  const { every = 500, samples = 2500 } = options;
  return definePlugin({
    name: 'mode-coverage',
    on: {
      'step:end': {
        every,
        handler: async ({ step }, trainer) => {
          // A private RNG: evaluating must not change the training stream.
          const z = trainer.sampleLatent(samples, new Rng(0x5eed));
          const points = trainer.generate(z);
          const values = await points.data();
          tf.dispose([z, points]);
          const count = countModes(values, mix);
          await trainer.emit('eval', {
            step,
            metrics: { modes_covered: count.covered, high_quality: count.highQuality },
            meta: { perMode: count.perMode },
          });
        },
      },
    },
  });
}

export default defineExperiment({
  name: 'ring-wgan-gp',
  description: 'MLP WGAN-GP on the ring of 8 Gaussians: Adam(1e-4, 0.5, 0.9), 5 critic steps, λ 0.1 (the WGAN-GP toy setting)',
  defaults: { steps: 3000, batchSize: 256, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => {
    const data = ring({ modes: 8, radius: 2, std: 0.02 });
    return {
      generator: ringGenerator(),
      discriminator: ringDiscriminator(),
      data,
      loss: wgan(),
      nCritic: 5,
      // Gulrajani et al.'s toy script (gan_toy.py): β₁ 0.5 and λ 0.1, smaller than the image setting's 10 ("seems to
      // help for toy tasks"); the paper's image defaults are β₁ 0 and λ 10.
      optimizers: { generator: tf.train.adam(1e-4, 0.5, 0.9), discriminator: tf.train.adam(1e-4, 0.5, 0.9) },
      plugins: [gradientPenalty({ lambda: 0.1 }), modeCoverage(data)],
    };
  },
});
