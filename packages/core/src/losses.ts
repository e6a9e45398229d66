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
  /**
   * Optional: the gradients of `discriminatorLoss` with respect to its two inputs, written as a few plain ops. Full
   * unrolling differentiates through this gradient on every lookahead update; without it, it takes `tf.grads` of
   * `discriminatorLoss`, which records the loss's forward and backward pass (and a copy of every saved tensor) on the
   * generator's tape. It must be the gradient of `discriminatorLoss`: the built-in losses' are equal to `tf.grads`'s
   * values bit for bit (tested).
   */
  discriminatorLossGradient?(realLogits: tf.Tensor, fakeLogits: tf.Tensor): [tf.Tensor, tf.Tensor];
}

// log(1 + e^x), stable for large |x|: tfjs softplus is implemented stably.
const softplus = (x: tf.Tensor) => tf.softplus(x);

/** Binary cross-entropy of logits against a constant target t: softplus(x) − t·x, averaged. */
export function bceWithLogits(logits: tf.Tensor, target: number): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(softplus(logits), tf.mul(logits, target))) as tf.Scalar);
}

/**
 * The gradients of bceWithLogits(r, 1) + bceWithLogits(f, 0) with respect to r and f: (σ(r) − 1)/n_r and σ(f)/n_f.
 * Written as the ops tfjs's backward pass runs (softplus′ = σ times the mean's 1/n, then the −1/n of the r·1 term
 * added), so the values equal `tf.grads`'s bit for bit: 1/n is a float32 (exact for n < 2^28 as the rounding of a
 * double quotient), σ·(1/n) − 1/n is the float32 sum tfjs accumulates.
 */
function bcePairGradient(r: tf.Tensor, f: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const perReal = Math.fround(1 / r.size);
  const perFake = Math.fround(1 / f.size);
  return tf.tidy(() => [tf.sub(tf.mul(tf.sigmoid(r), perReal), perReal), tf.mul(tf.sigmoid(f), perFake)]);
}

/** Original minimax GAN (Goodfellow et al. 2014): G minimizes log(1 − D(G(z))), which saturates early in training. */
export function minimax(): GanLoss {
  return {
    name: 'minimax',
    discriminatorLoss: (r, f) => tf.tidy(() => tf.add(bceWithLogits(r, 1), bceWithLogits(f, 0))),
    discriminatorLossGradient: bcePairGradient,
    // log(1 − σ(f)) = −softplus(f)
    generatorLoss: (f) => tf.tidy(() => tf.neg(tf.mean(softplus(f))) as tf.Scalar),
  };
}

/** Non-saturating GAN (Goodfellow et al. 2014, the practical default): G maximizes log D(G(z)). */
export function nonSaturating(): GanLoss {
  return {
    name: 'non-saturating',
    discriminatorLoss: (r, f) => tf.tidy(() => tf.add(bceWithLogits(r, 1), bceWithLogits(f, 0))),
    discriminatorLossGradient: bcePairGradient,
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

/**
 * Relativistic pairing GAN (RpGAN; Jolicoeur-Martineau 2019, the loss R3GAN builds on): each real sample is paired
 * with the generated sample at the same batch index. D: E[softplus(D(G(zᵢ)) − D(xᵢ))], G: E[softplus(D(xᵢ) − D(G(zᵢ)))]
 * (−log σ(a) = softplus(−a)). The generator loss needs D(real), which the trainer computes because `generatorLoss`
 * declares that parameter. Real and fake batches must have the same size.
 */
export function rpgan(): GanLoss {
  const pairedSoftplus = (winner: tf.Tensor, loser: tf.Tensor) =>
    tf.tidy(() => {
      checkPaired(winner, loser);
      return tf.mean(softplus(tf.sub(loser, winner))) as tf.Scalar;
    });
  return {
    name: 'rpgan',
    discriminatorLoss: (r, f) => pairedSoftplus(r, f),
    generatorLoss: (f, r) => pairedSoftplus(f, requireReal('rpgan', r)),
  };
}

/**
 * Relativistic average GAN (RaSGAN; Jolicoeur-Martineau 2019): each output is compared with the mean output of the
 * other kind. D: E[softplus(−(D(x) − E D(G(z))))] + E[softplus(D(G(z)) − E D(x))]; G: the same with real and fake
 * swapped, so the generator also gets gradient through the real term's mean.
 */
export function relativisticAverage(): GanLoss {
  const averaged = (winner: tf.Tensor, loser: tf.Tensor) =>
    tf.tidy(
      () =>
        tf.add(
          tf.mean(softplus(tf.neg(tf.sub(winner, tf.mean(loser))))),
          tf.mean(softplus(tf.sub(loser, tf.mean(winner)))),
        ) as tf.Scalar,
    );
  return {
    name: 'relativistic-average',
    discriminatorLoss: (r, f) => averaged(r, f),
    generatorLoss: (f, r) => averaged(f, requireReal('relativistic-average', r)),
  };
}

function requireReal(loss: string, realLogits: tf.Tensor | undefined): tf.Tensor {
  if (!realLogits) throw new Error(`${loss}: the generator loss needs D(real); pass the real logits as the second argument`);
  return realLogits;
}

function checkPaired(a: tf.Tensor, b: tf.Tensor): void {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`rpgan pairs real and fake samples one to one, but D(real) is [${a.shape}] and D(fake) is [${b.shape}]`);
  }
}

export const standardLosses = { minimax, nonSaturating, hinge, leastSquares, rpgan, relativisticAverage } as const;
