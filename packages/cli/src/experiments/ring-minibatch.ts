import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nonSaturating } from '@gantry/core';
import { ring } from '@gantry/datasets';
import { minibatchDiscrimination } from '@gantry/minibatch-disc';
import { ringGenerator } from './ring-gan.js';
import { modeCoverage } from './ring-wgan-gp.js';
import { defineExperiment } from './types.js';

/** The ring discriminator (128 ReLU units → 1 logit) with minibatch discrimination between the two layers. */
export function ringMinibatchDiscriminator(kernels = 8, dims = 4): tfl.LayersModel {
  return tfl.sequential({
    name: 'discriminator',
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 128, activation: 'relu' }),
      minibatchDiscrimination({ kernels, dims }),
      tfl.layers.dense({ units: 1 }),
    ],
  });
}

export default defineExperiment({
  name: 'ring-minibatch',
  description: 'The ring-gan setup (non-saturating, Adam 1e-4 β1 0.5) with minibatch discrimination (8 kernels × 4) in D',
  // Batch 256, not ring-gan's 512: the layer costs O(N²) per batch.
  defaults: { steps: 5000, batchSize: 256, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => {
    const data = ring({ modes: 8, radius: 2, std: 0.02 });
    return {
      generator: ringGenerator(),
      discriminator: ringMinibatchDiscriminator(),
      data,
      loss: nonSaturating(),
      optimizers: { generator: tf.train.adam(1e-4, 0.5, 0.999), discriminator: tf.train.adam(1e-4, 0.5, 0.999) },
      plugins: [modeCoverage(data)],
    };
  },
});
