import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { gradientPenalty, wgan } from '@gantry/loss-wgan';
import { ringGanSetup } from './ring-gan.js';
import { defineExperiment } from './types.js';

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
    const setup = ringGanSetup({ discriminator: ringCritic });
    return {
      ...setup,
      loss: wgan(),
      nCritic: 5,
      // Gulrajani et al.'s toy script used Adam(1e-4, 0.5, 0.9) and λ 0.1 for 100k steps; a 10× learning rate makes
      // progress visible within a few thousand steps on a CPU (λ 0.1 and 10 behaved alike here).
      optimizers: { generator: tf.train.adam(1e-3, 0.5, 0.9), discriminator: tf.train.adam(1e-3, 0.5, 0.9) },
      plugins: [gradientPenalty({ lambda: 10 }), ...(setup.plugins ?? [])],
    };
  },
});
