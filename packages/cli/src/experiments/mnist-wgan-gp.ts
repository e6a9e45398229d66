import { gradientPenalty, wganGpDefaults } from '@gantry/loss-wgan';
import { referenceDiscriminator as dcganDiscriminator, referenceGenerator as dcganGenerator } from '@gantry/engine';
import { defineExperiment } from './types.js';

export default defineExperiment({
  name: 'mnist-wgan-gp',
  description:
    'WGAN-GP on MNIST (Gulrajani et al. 2017): DCGAN generator, DCGAN critic without batch norm, Adam(1e-4, 0, 0.9), 5 critic steps, λ 10',
  defaults: { steps: 2000, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  needs: { mnist: ['train'] },
  build: (ctx) => ({
    generator: dcganGenerator(),
    // The DCGAN discriminator has no batch normalization, as the per-sample penalty requires.
    discriminator: dcganDiscriminator(),
    data: ctx.mnist({ split: 'train' }),
    ...wganGpDefaults(),
    plugins: [gradientPenalty({ lambda: 10 })],
  }),
});
