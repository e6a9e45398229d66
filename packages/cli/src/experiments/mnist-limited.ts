import * as tf from '@tensorflow/tfjs-core';
import { nonSaturating, type GantryPlugin } from '@gantry/core';
import { referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { ada, diffAugment } from '@gantry/augment';
import { defineExperiment, endFid, type Experiment } from './types.js';

/** The first 1000 MNIST training images (a fixed subset: `limit` keeps the file order), 1.7% of the set. */
export const LIMITED_IMAGES = 1000;

/**
 * mnist-dcgan's recipe (reference DCGAN models, non-saturating loss, Adam(2e-4, β1 0.5)) on 1000 training images,
 * with an augmentation plugin or none; FID of 10000 samples against the test set at the last step.
 */
function limited(name: string, what: string, augment: () => GantryPlugin[]): Experiment {
  return defineExperiment({
    name,
    description: `DCGAN on the first ${LIMITED_IMAGES} MNIST training images, ${what}; FID (N = 10000, test set) at the end`,
    defaults: { steps: 2000, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
    needs: { mnist: ['train'] },
    build: (ctx) => ({
      generator: referenceGenerator(),
      discriminator: referenceDiscriminator(),
      data: ctx.mnist({ split: 'train', limit: LIMITED_IMAGES }),
      loss: nonSaturating(),
      optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
      plugins: [...augment(), ...endFid(ctx)],
    }),
  });
}

export const mnistLimited = limited('mnist-limited', 'no augmentation', () => []);
export const mnistLimitedDiffAugment = limited('mnist-limited-diffaugment', 'DiffAugment (color, translation, cutout)', () => [diffAugment()]);
/** ADA at the paper's speed (adaKimg 500, target 0.6, every 4 steps); p is logged as `ada/p`. */
export const mnistLimitedAda = limited('mnist-limited-ada', 'ADA (target 0.6, adaKimg 500)', () => [ada()]);
