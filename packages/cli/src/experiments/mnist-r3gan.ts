import { referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { emaBetaForHalfLife, r3ganDefaults, r3ganSchedule } from '@gantry/loss-wgan';
import { ema } from '@gantry/stabilizers';
import { defineExperiment, evalFid } from './types.js';

/**
 * The R3GAN objective on the DCGAN models mnist-wgan-gp uses: RpGAN + R1 + R2 (γ 0.05), Adam(2e-4, β1 0, β2 0.9,
 * ε 1e-8), one D step per G step (`r3ganDefaults()`, the authors' small-image preset). The generator EMA takes the
 * half-life R3GAN's schedule reaches at the run's last image (its half-life ramps up from 0 over 20M images).
 * Not R3GAN's network: its grouped-convolution ResNets are far larger than this machine trains in minutes. FID
 * (N = 10000, test set) every 500 steps.
 */
export default defineExperiment({
  name: 'mnist-r3gan',
  description: 'R3GAN objective on MNIST: RpGAN + R1 + R2 (γ 0.05), Adam(2e-4, 0, 0.9), 1 D step, DCGAN models, generator EMA; FID every 500 steps',
  defaults: { steps: 2000, batchSize: 64, sampleEvery: 100, checkpointEvery: 500 },
  needs: { mnist: ['train'] },
  build: (ctx) => {
    const { steps, batchSize, mnist } = ctx;
    const preset = r3ganDefaults();
    const halfLife = r3ganSchedule(steps * batchSize).emaHalfLifeImages;
    return {
      generator: referenceGenerator(),
      discriminator: referenceDiscriminator(),
      data: mnist({ split: 'train' }),
      ...preset,
      plugins: [...preset.plugins, ema({ beta: emaBetaForHalfLife(halfLife, batchSize) }), ...evalFid(ctx, 500)],
    };
  },
});
