import * as tf from '@tensorflow/tfjs-core';
import { GantryError, type GanLoss } from '@gantry/core';

/**
 * Wasserstein loss (Arjovsky et al. 2017). The discriminator is a critic with an unbounded scalar output:
 * critic loss E[D(G(z))] − E[D(x)] (its negative estimates the Wasserstein-1 distance when D is 1-Lipschitz),
 * generator loss −E[D(G(z))]. Lipschitz continuity must come from elsewhere: `weightClipping`, `gradientPenalty`
 * or spectral normalization.
 */
export function wgan(): GanLoss {
  return {
    name: 'wgan',
    discriminatorLoss: (real, fake) => tf.tidy(() => tf.sub(tf.mean(fake), tf.mean(real)) as tf.Scalar),
    generatorLoss: (fake) => tf.tidy(() => tf.neg(tf.mean(fake)) as tf.Scalar),
  };
}

/** What a preset contributes to Trainer options: spread it in (`new Trainer({ ...wganGpDefaults(), ... })`). */
export interface WganPreset {
  loss: GanLoss;
  nCritic: number;
  optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
}

/**
 * Paper defaults of WGAN (Arjovsky et al. 2017, Algorithm 1): RMSProp with learning rate 5e-5 for both networks,
 * 5 critic updates per generator update, weight clipping c = 0.01 (add `weightClipping()` to the plugins).
 * RMSProp's decay 0.99 and ε 1e-8 are those of the reference PyTorch code. A function, so every Trainer gets fresh
 * optimizer state.
 */
export function wganDefaults(): WganPreset {
  return {
    loss: wgan(),
    nCritic: 5,
    optimizers: { generator: tf.train.rmsprop(5e-5, 0.99, 0, 1e-8), discriminator: tf.train.rmsprop(5e-5, 0.99, 0, 1e-8) },
  };
}

/**
 * Paper defaults of WGAN-GP (Gulrajani et al. 2017, Algorithm 1): Adam(α = 1e-4, β₁ = 0, β₂ = 0.9) for both
 * networks, 5 critic updates per generator update, λ = 10 (add `gradientPenalty()` to the plugins). No batch
 * normalization in the critic (the penalty is per sample); layer normalization is the paper's replacement.
 */
export function wganGpDefaults(): WganPreset {
  return {
    loss: wgan(),
    nCritic: 5,
    optimizers: { generator: tf.train.adam(1e-4, 0, 0.9), discriminator: tf.train.adam(1e-4, 0, 0.9) },
  };
}

/**
 * Adam for a network regularized lazily every `every` steps, corrected as in StyleGAN2 (Karras et al. 2020, App. B):
 * with c = every / (every + 1), learning rate × c and β's raised to the power c, so the optimizer's effective
 * dynamics match a non-lazy run. StyleGAN2 uses lr 0.002, β₁ 0, β₂ 0.99, every 16 for the discriminator.
 */
export function lazyAdam(options: { learningRate: number; beta1?: number; beta2?: number; every: number }): tf.Optimizer {
  const { learningRate, beta1 = 0, beta2 = 0.99, every } = options;
  if (!Number.isInteger(every) || every < 1) throw new GantryError(`lazyAdam: every must be a positive integer, got ${every}`);
  const c = every / (every + 1);
  return tf.train.adam(learningRate * c, beta1 ** c, beta2 ** c);
}
