import { Trainer, withSeed, type GantryPlugin, type TrainerOptions } from '@gantry/core';
import { referenceDiscriminator, referenceGenerator } from '@gantry/engine';
import { gradientPenalty, wgan } from '@gantry/loss-wgan';
import { imageSource } from '@gantry/core/testing';

/**
 * The reference DCGAN-MNIST pair with WGAN-GP (λ 10, two critic updates per step), seeded: the model mnist-wgan-gp
 * trains, at batch 8, one step unless `extra` says otherwise.
 */
export function wganGpTrainer(extra: Partial<TrainerOptions> = {}, plugins: GantryPlugin[] = []): Trainer {
  const { generator, discriminator } = withSeed(5, () => ({ generator: referenceGenerator(), discriminator: referenceDiscriminator() }));
  return new Trainer({
    generator,
    discriminator,
    data: imageSource({ side: 28 }),
    loss: wgan(),
    plugins: [gradientPenalty({ lambda: 10 }), ...plugins],
    nCritic: 2,
    steps: 1,
    batchSize: 8,
    seed: 3,
    ...extra,
  });
}
