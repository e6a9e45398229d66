import * as tfl from '@tensorflow/tfjs-layers';
import { minibatchDiscrimination } from '@gantry/minibatch-disc';
import { ringGanSetup } from './ring-gan.js';
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
  description:
    'The ring-gan setup (non-saturating, Adam 1e-3 β1 0.5) with minibatch discrimination (8 kernels × 4) in D; a failure case: D overpowers G from the first step (alert oscillation) and no mode is covered after 2000 steps',
  // Batch 256, not ring-gan's 512: the layer costs O(N²) per batch.
  defaults: { steps: 5000, batchSize: 256, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => ringGanSetup({ discriminator: ringMinibatchDiscriminator }),
});
