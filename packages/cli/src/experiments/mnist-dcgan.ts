import * as tf from '@tensorflow/tfjs-core';
import { nonSaturating } from '@gantry/core';
import { referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { defineExperiment } from './types.js';

/**
 * DCGAN (Radford et al. 2016) sized for MNIST: the engine's reference models (the ones `gantry bench` times), the
 * non-saturating loss and Adam(2e-4, β1 0.5) for both networks.
 */
export default defineExperiment({
  name: 'mnist-dcgan',
  description: 'DCGAN on MNIST with the non-saturating loss and Adam(2e-4, β1 0.5) for both networks',
  // 3000 steps (3.2 epochs): recognizable digits (README grid); about 0.75 s of CPU per step on wasm.
  defaults: { steps: 3000, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  needs: { mnist: ['train'] },
  build: (ctx) => ({
    generator: referenceGenerator(),
    discriminator: referenceDiscriminator(),
    data: ctx.mnist({ split: 'train' }),
    loss: nonSaturating(),
    optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
  }),
});
