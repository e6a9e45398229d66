/**
 * The unconditional DCGAN pilots that README's "Choosing npm start" table compares with mnist-cgan, as an experiment
 * module with FID (N = 10000, test set) every 500 steps:
 *
 *   GANTRY_EMA_BETA=0.995 npm run gantry -- train scripts/dcgan-ema-pilot.ts --backend tensorflow
 *   GANTRY_BN_AFTER_DENSE=1 GANTRY_EMA_RAMPUP=0.05 npm run gantry -- train scripts/dcgan-ema-pilot.ts --backend tensorflow
 *
 * GANTRY_EMA_BETA (default 0.999) and GANTRY_EMA_RAMPUP (default none) set the EMA generator; GANTRY_BN_AFTER_DENSE=1
 * uses mnist-cgan's generator without the label (batch norm + ReLU after the dense layer) instead of the reference one.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nonSaturating } from '@gantry/core';
import { referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { ema } from '@gantry/stabilizers';
import { defineExperiment, evalFid } from '../packages/cli/src/experiments/types.js';

const beta = Number(process.env.GANTRY_EMA_BETA ?? 0.999);
const rampup = process.env.GANTRY_EMA_RAMPUP ? Number(process.env.GANTRY_EMA_RAMPUP) : undefined;
const bnAfterDense = process.env.GANTRY_BN_AFTER_DENSE === '1';

function generatorWithBnAfterDense(latentDim = 100): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [latentDim], units: 7 * 7 * 128 }),
      tfl.layers.batchNormalization(),
      tfl.layers.reLU(),
      tfl.layers.reshape({ targetShape: [7, 7, 128] }),
      tfl.layers.conv2dTranspose({ filters: 64, kernelSize: 4, strides: 2, padding: 'same' }),
      tfl.layers.batchNormalization(),
      tfl.layers.reLU(),
      tfl.layers.conv2dTranspose({ filters: 1, kernelSize: 4, strides: 2, padding: 'same', activation: 'tanh' }),
    ],
  });
}

export default defineExperiment({
  name: 'dcgan-ema-pilot',
  description: 'DCGAN (non-saturating, Adam(2e-4, 0.5)) with an EMA generator; FID every 500 steps',
  defaults: { steps: 3000, batchSize: 64, sampleEvery: 500, checkpointEvery: 1000 },
  needs: { mnist: ['train'] },
  build: (ctx) => ({
    generator: bnAfterDense ? generatorWithBnAfterDense() : referenceGenerator(),
    discriminator: referenceDiscriminator(),
    data: ctx.mnist({ split: 'train' }),
    loss: nonSaturating(),
    optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
    plugins: [ema({ beta, rampup }), ...evalFid(ctx, 500)],
  }),
});
