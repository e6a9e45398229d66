import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, definePlugin, type GantryPlugin } from '@gantry/core';
import { countModes, ring, type Mixture2D } from '@gantry/datasets';
import { gradientPenalty, wgan } from '@gantry/loss-wgan';
import { ringGenerator } from './ring-gan.js';
import { defineExperiment } from './types.js';

/**
 * Every `every` steps, draws `samples` points from the sampling generator with fixed noise and emits an `eval` event
 * with the mode coverage of the mixture: `modes_covered` (modes with ≥ 1% of the samples within 3σ), `high_quality`
 * (fraction of samples within 3σ of a centre) and `mean_distance` (mean distance to the nearest centre, which shows
 * progress before samples land within 3σ).
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
          let distance = 0;
          for (let i = 0; i < samples; i++) {
            distance += Math.min(...mix.centers.map(([cx, cy]) => Math.hypot(values[2 * i] - cx, values[2 * i + 1] - cy)));
          }
          await trainer.emit('eval', {
            step,
            metrics: { modes_covered: count.covered, high_quality: count.highQuality, mean_distance: distance / samples },
            meta: { perMode: count.perMode },
          });
        },
      },
    },
  });
}

/**
 * The WGAN critic for the ring: three 128-unit ReLU layers → 1 score (the NS ring discriminator has one; the critic
 * must estimate a distance, and Gulrajani et al.'s toy critic had three 512-unit layers).
 */
export function ringCritic(): tfl.LayersModel {
  return tfl.sequential({
    name: 'critic',
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 1 }),
    ],
  });
}

export default defineExperiment({
  name: 'ring-wgan-gp',
  description: 'WGAN-GP on the ring of 8 Gaussians: ring-gan generator, 3×128 ReLU critic, Adam(1e-3, 0.5, 0.9), 5 critic steps, λ 10',
  defaults: { steps: 5000, batchSize: 256, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => {
    const data = ring({ modes: 8, radius: 2, std: 0.02 });
    return {
      generator: ringGenerator(),
      discriminator: ringCritic(),
      data,
      loss: wgan(),
      nCritic: 5,
      // Gulrajani et al.'s toy script used Adam(1e-4, 0.5, 0.9) and λ 0.1 for 100k steps; a 10× learning rate makes
      // progress visible within a few thousand steps on a CPU (λ 0.1 and 10 behaved alike here).
      optimizers: { generator: tf.train.adam(1e-3, 0.5, 0.9), discriminator: tf.train.adam(1e-3, 0.5, 0.9) },
      plugins: [gradientPenalty({ lambda: 10 }), modeCoverage(data)],
    };
  },
});
