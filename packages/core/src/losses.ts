import * as tf from '@tensorflow/tfjs-core';

/**
 * A GAN objective. Both functions take the discriminator's raw outputs (logits for the probabilistic losses, critic
 * values for Wasserstein-style ones) and return a scalar to minimize. Loss plugins such as `wgan()` return this same
 * shape, so a user passes any of them as `loss`.
 */
export interface GanLoss {
  readonly name: string;
  discriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar;
  generatorLoss(fakeLogits: tf.Tensor, realLogits?: tf.Tensor): tf.Scalar;
}

// log(1 + e^x), stable for large |x|: tfjs softplus is implemented stably.
const softplus = (x: tf.Tensor) => tf.softplus(x);

/** Binary cross-entropy of logits against a constant target t: softplus(x) − t·x, averaged. */
export function bceWithLogits(logits: tf.Tensor, target: number): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(softplus(logits), tf.mul(logits, target))) as tf.Scalar);
}

/** Original minimax GAN (Goodfellow et al. 2014): G minimizes log(1 − D(G(z))), which saturates early in training. */
export function minimax(): GanLoss {
  return {
    name: 'minimax',
    discriminatorLoss: (r, f) => tf.tidy(() => tf.add(bceWithLogits(r, 1), bceWithLogits(f, 0))),
    // log(1 − σ(f)) = −softplus(f)
    generatorLoss: (f) => tf.tidy(() => tf.neg(tf.mean(softplus(f))) as tf.Scalar),
  };
}

/** Non-saturating GAN (Goodfellow et al. 2014, the practical default): G maximizes log D(G(z)). */
export function nonSaturating(): GanLoss {
  return {
    name: 'non-saturating',
    discriminatorLoss: (r, f) => tf.tidy(() => tf.add(bceWithLogits(r, 1), bceWithLogits(f, 0))),
    generatorLoss: (f) => bceWithLogits(f, 1),
  };
}

/** Hinge loss (Lim & Ye 2017; used by SNGAN, BigGAN): D: E[relu(1 − D(x))] + E[relu(1 + D(G(z)))], G: −E[D(G(z))]. */
export function hinge(): GanLoss {
  return {
    name: 'hinge',
    discriminatorLoss: (r, f) =>
      tf.tidy(() => tf.add(tf.mean(tf.relu(tf.sub(1, r))), tf.mean(tf.relu(tf.add(1, f)))) as tf.Scalar),
    generatorLoss: (f) => tf.tidy(() => tf.neg(tf.mean(f)) as tf.Scalar),
  };
}

/** Least-squares GAN (Mao et al. 2017) with a = 0, b = c = 1: D: ½E[(D(x) − 1)²] + ½E[D(G(z))²], G: ½E[(D(G(z)) − 1)²]. */
export function leastSquares(): GanLoss {
  return {
    name: 'least-squares',
    discriminatorLoss: (r, f) =>
      tf.tidy(() => tf.mul(0.5, tf.add(tf.mean(tf.square(tf.sub(r, 1))), tf.mean(tf.square(f)))) as tf.Scalar),
    generatorLoss: (f) => tf.tidy(() => tf.mul(0.5, tf.mean(tf.square(tf.sub(f, 1)))) as tf.Scalar),
  };
}

export const standardLosses = { minimax, nonSaturating, hinge, leastSquares } as const;
