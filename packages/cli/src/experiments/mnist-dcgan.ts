import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nonSaturating } from '@gantry/core';
import { mnist } from '@gantry/datasets';
import { defineExperiment } from './types.js';

export const LATENT_DIM = 100;

/** DCGAN generator for 28×28×1 (Radford et al. 2016, sized for MNIST): 7×7×128 → 14×14×64 → 28×28×1. */
export function dcganGenerator(latentDim = LATENT_DIM): tfl.LayersModel {
  return tfl.sequential({
    name: 'generator',
    layers: [
      tfl.layers.dense({ inputShape: [latentDim], units: 7 * 7 * 128, useBias: false }),
      tfl.layers.batchNormalization(),
      tfl.layers.reLU(),
      tfl.layers.reshape({ targetShape: [7, 7, 128] }),
      tfl.layers.conv2dTranspose({ filters: 64, kernelSize: 4, strides: 2, padding: 'same', useBias: false }),
      tfl.layers.batchNormalization(),
      tfl.layers.reLU(),
      tfl.layers.conv2dTranspose({ filters: 1, kernelSize: 4, strides: 2, padding: 'same', activation: 'tanh' }),
    ],
  });
}

/** DCGAN discriminator: two strided 4×4 convolutions with leaky ReLU 0.2, then one logit. */
export function dcganDiscriminator(shape: [number, number, number] = [28, 28, 1]): tfl.LayersModel {
  return tfl.sequential({
    name: 'discriminator',
    layers: [
      tfl.layers.conv2d({ inputShape: shape, filters: 64, kernelSize: 4, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.conv2d({ filters: 128, kernelSize: 4, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1 }),
    ],
  });
}

export default defineExperiment({
  name: 'mnist-dcgan',
  description: 'DCGAN on MNIST with the non-saturating loss and Adam(2e-4, β1 0.5) for both networks',
  defaults: { steps: 1500, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  build: () => ({
    generator: dcganGenerator(),
    discriminator: dcganDiscriminator(),
    data: mnist({ split: 'train' }),
    loss: nonSaturating(),
    optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
  }),
});
