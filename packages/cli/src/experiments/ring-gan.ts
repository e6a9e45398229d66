import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nonSaturating } from '@gantry/core';
import { ring } from '@gantry/datasets';
import { defineExperiment, type ExperimentSetup } from './types.js';

export const RING_LATENT_DIM = 256;

/** The MLPs of Metz et al. 2017's ring experiment: G two 128-unit ReLU layers → 2 (linear), D one 128-unit ReLU layer → 1 logit. */
export function ringGenerator(latentDim = RING_LATENT_DIM): tfl.LayersModel {
  return tfl.sequential({
    name: 'generator',
    layers: [
      tfl.layers.dense({ inputShape: [latentDim], units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 2 }),
    ],
  });
}

export function ringDiscriminator(): tfl.LayersModel {
  return tfl.sequential({
    name: 'discriminator',
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 128, activation: 'relu' }),
      tfl.layers.dense({ units: 1 }),
    ],
  });
}

/** Networks, data, loss and optimizers of ring-gan; variants (unrolled, …) spread this and add plugins. */
export function ringGanSetup(): ExperimentSetup {
  return {
    generator: ringGenerator(),
    discriminator: ringDiscriminator(),
    data: ring({ modes: 8, radius: 2, std: 0.02 }),
    loss: nonSaturating(),
    // Metz et al. 2017: Adam with lr 1e-4 for G and D, β1 0.5.
    optimizers: { generator: tf.train.adam(1e-4, 0.5, 0.999), discriminator: tf.train.adam(1e-4, 0.5, 0.999) },
  };
}

export default defineExperiment({
  name: 'ring-gan',
  description: 'MLP GAN on a ring of 8 Gaussians (radius 2, σ 0.02); the classic mode-collapse testbed',
  defaults: { steps: 5000, batchSize: 512, sampleEvery: 500, checkpointEvery: 1000 },
  build: ringGanSetup,
});
