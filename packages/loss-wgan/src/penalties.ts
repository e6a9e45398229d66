import * as tf from '@tensorflow/tfjs-core';
import {
  GantryError,
  checkOptions,
  definePlugin,
  registerNestedGradientFixes,
  type GantryPlugin,
  type LossContext,
} from '@gantry/core';

/** Applies the critic to a batch (labels passed through for conditional critics), as LossContext.discriminate. */
export type Discriminate = (x: tf.Tensor, labels?: tf.Tensor) => tf.Tensor;

/**
 * ∇ₓ D(x) per sample, differentiable with respect to the critic's weights (a gradient of a gradient when used inside
 * the phase's gradient computation). Summing D over the batch gives each sample's own input gradient as long as
 * samples do not interact inside D (no batch normalization or minibatch layers in training mode).
 */
export function inputGradients(discriminate: Discriminate, x: tf.Tensor, labels?: tf.Tensor): tf.Tensor {
  // leakyRelu's gradient uses Greater, whose own gradient tfjs does not register: needed for second order.
  registerNestedGradientFixes();
  return tf.grad((input: tf.Tensor) => tf.sum(discriminate(input, labels)))(x);
}

/** Squared L2 norm of each sample's slice: [N, ...] → [N]. */
function squaredNorms(g: tf.Tensor): tf.Tensor1D {
  return tf.sum(tf.square(tf.reshape(g, [g.shape[0], -1])), 1) as tf.Tensor1D;
}

export interface GradientPenaltyOptions {
  /** λ, the penalty weight. Gulrajani et al.: 10. */
  lambda?: number;
  /** Penalize only norms above the target, max(0, ‖∇‖ − target)² (Gulrajani et al. §4, Petzka et al. 2018). */
  oneSided?: boolean;
  /** The norm the penalty pulls towards. Default 1 (1-Lipschitz). */
  target?: number;
}

const GP_KEYS = ['lambda', 'oneSided', 'target'] as const;

function checkGpOptions(options: GradientPenaltyOptions): Required<GradientPenaltyOptions> {
  checkOptions('gradientPenalty', options, GP_KEYS);
  const lambda = options.lambda ?? 10;
  const target = options.target ?? 1;
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new GantryError(`gradientPenalty: lambda must be ≥ 0, got ${lambda}`);
  if (!(target > 0) || !Number.isFinite(target)) throw new GantryError(`gradientPenalty: target must be > 0, got ${target}`);
  return { lambda, target, oneSided: options.oneSided ?? false };
}

/**
 * The WGAN-GP penalty for given interpolation weights ε (shape [N, 1, …, 1]): x̂ = εx + (1 − ε)x̃,
 * λ · E[(‖∇x̂ D(x̂)‖ − target)²], or with `oneSided` λ · E[max(0, ‖∇x̂ D(x̂)‖ − target)²].
 * Returns the penalty and the mean gradient norm.
 */
export function gradientPenaltyLoss(
  discriminate: Discriminate,
  real: tf.Tensor,
  fake: tf.Tensor,
  epsilon: tf.Tensor,
  options: GradientPenaltyOptions = {},
  labels?: tf.Tensor,
): { penalty: tf.Scalar; meanNorm: tf.Scalar } {
  const { lambda, oneSided, target } = checkGpOptions(options);
  return tf.tidy(() => {
    const interpolates = tf.add(tf.mul(epsilon, real), tf.mul(tf.sub(1, epsilon), fake));
    const grads = inputGradients(discriminate, interpolates, labels);
    // The tiny floor keeps sqrt differentiable if a gradient is exactly zero (sqrt′(0) = ∞ would give NaN).
    const norms = tf.sqrt(tf.add(squaredNorms(grads), 1e-12));
    const gap = tf.sub(norms, target);
    const penalty = tf.mul(lambda, tf.mean(tf.square(oneSided ? tf.relu(gap) : gap))) as tf.Scalar;
    return { penalty, meanNorm: tf.mean(norms) as tf.Scalar };
  });
}

/** One interpolation weight per sample, uniform on [0, 1), shaped to broadcast over the sample's axes. */
export function interpolationWeights(shape: readonly number[], seed: number): tf.Tensor {
  return tf.randomUniform([shape[0], ...shape.slice(1).map(() => 1)], 0, 1, 'float32', seed);
}

/**
 * WGAN-GP (Gulrajani et al. 2017): adds λ · E[(‖∇x̂ D(x̂)‖ − 1)²] to the critic loss, on random interpolates
 * x̂ = εx + (1 − ε)x̃ between real and generated samples with one ε ~ U[0, 1] per sample (seeded from the run's RNG).
 * Conditional critics get the batch labels. Reports the mean gradient norm as `gradient-penalty/grad_norm`.
 * Use with `wgan()` and `wganGpDefaults()`; keep batch normalization out of the critic.
 */
export function gradientPenalty(options: GradientPenaltyOptions = {}): GantryPlugin {
  const resolved = checkGpOptions(options);
  return definePlugin({
    name: 'gradient-penalty',
    hooks: {
      setup: () => registerNestedGradientFixes(),
      lossTerms: {
        phase: 'D',
        handler: (ctx: LossContext) => {
          const epsilon = interpolationWeights(ctx.real.shape, ctx.rng.nextSeed());
          const { penalty, meanNorm } = gradientPenaltyLoss(ctx.discriminate, ctx.real, ctx.fake, epsilon, resolved, ctx.labels);
          epsilon.dispose();
          ctx.report('grad_norm', meanNorm); // the core owns reported tensors
          return penalty;
        },
      },
    },
  });
}

export interface GradientRegularizerOptions {
  /**
   * γ: the term is (γ/2) · E[‖∇D‖²]. No universal default. Mescheder et al. 2018 use γ = 10 on CelebA-HQ/LSUN,
   * StyleGAN2 γ = 10 on FFHQ 1024²; StyleGAN2-ADA's heuristic is γ = 0.0002 · resolution² / batchSize.
   */
  gamma: number;
  /**
   * Lazy regularization (StyleGAN2): apply the term only on every `every`-th step, multiplied by `every` so its
   * average strength is unchanged. StyleGAN2 uses 16 (pair with `lazyAdam`). Default 1 (every step).
   */
  every?: number;
}

function gradientRegularizer(which: 'r1' | 'r2', options: GradientRegularizerOptions): GantryPlugin {
  checkOptions(which, options, ['gamma', 'every']);
  const { gamma } = options;
  const every = options.every ?? 1;
  if (typeof gamma !== 'number' || !(gamma >= 0) || !Number.isFinite(gamma)) {
    throw new GantryError(`${which}: gamma is required and must be ≥ 0 (e.g. ${which}({ gamma: 10 })), got ${gamma}`);
  }
  if (!Number.isInteger(every) || every < 1) throw new GantryError(`${which}: every must be a positive integer, got ${every}`);
  return definePlugin({
    name: which,
    hooks: {
      setup: () => registerNestedGradientFixes(),
      lossTerms: {
        phase: 'D',
        every,
        handler: (ctx: LossContext) =>
          tf.tidy(() => {
            const x = which === 'r1' ? ctx.real : ctx.fake;
            const grads = inputGradients(ctx.discriminate, x, ctx.labels);
            const meanSquared = tf.mean(squaredNorms(grads)) as tf.Scalar;
            ctx.report('grad_norm_sq', meanSquared);
            return tf.mul((gamma / 2) * every, meanSquared) as tf.Scalar;
          }),
      },
    },
  });
}

/**
 * R1 regularization (Mescheder et al. 2018): (γ/2) · E_x[‖∇ₓD(x)‖²] on real data, added to the discriminator loss.
 * With `every: k` it runs on every k-th step, scaled by k (StyleGAN2 lazy regularization). With nCritic > 1 it runs
 * in every critic phase of those steps, so the scaling still keeps its average strength.
 * Reports `r1/grad_norm_sq` (unscaled E‖∇D‖²).
 */
export function r1(options: GradientRegularizerOptions): GantryPlugin {
  return gradientRegularizer('r1', options);
}

/** R2 regularization (Mescheder et al. 2018): as `r1`, on generated samples (E_z[‖∇D(G(z))‖²]). */
export function r2(options: GradientRegularizerOptions): GantryPlugin {
  return gradientRegularizer('r2', options);
}
