import * as tf from '@tensorflow/tfjs-core';
import { hinge } from '@gantry/core';
import { spectralNorm, spectralNormalize } from '@gantry/spectral-norm';
import { referenceDiscriminator as dcganDiscriminator, referenceGenerator as dcganGenerator } from '@gantry/engine';
import { defineExperiment } from './types.js';

export default defineExperiment({
  name: 'mnist-sngan',
  description:
    'SNGAN on MNIST (Miyato et al. 2018): DCGAN models, every D layer spectrally normalized, hinge loss, Adam(2e-4, 0.5, 0.999), 1 D step',
  defaults: { steps: 1500, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  needs: { mnist: ['train'] },
  build: (ctx) => {
    const plain = dcganDiscriminator();
    const discriminator = spectralNormalize(plain);
    plain.dispose();
    return {
      generator: dcganGenerator(),
      discriminator,
      data: ctx.mnist({ split: 'train' }),
      loss: hinge(),
      // Setting C of Miyato et al. (Table 1), the cheapest of their standard-CNN settings: n_dis = 1.
      optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
      plugins: [spectralNorm({ every: 100 })],
    };
  },
});
