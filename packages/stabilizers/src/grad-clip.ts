import * as tf from '@tensorflow/tfjs-core';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type HookContext, type Phase } from '@gantry/core';

export interface GradClipOptions {
  /** Largest allowed global L2 norm of one phase's gradients. */
  maxNorm: number;
  /** Clip only the discriminator (`'D'`) or generator (`'G'`) phase; both by default. */
  phase?: Phase;
}

/** Global L2 norm over all tensors of a gradient map: sqrt(Σ‖g‖²). */
export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/**
 * Scales every gradient by maxNorm / max(norm, maxNorm): unchanged (factor exactly 1) when the global norm is at most
 * maxNorm, otherwise rescaled so the global norm is maxNorm. Runs on the device: no value is read back.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number, norm: tf.Scalar = globalNorm(grads)): tf.NamedTensorMap {
  return tf.tidy(() => {
    const scale = tf.div(maxNorm, tf.maximum(norm, maxNorm));
    return Object.fromEntries(Object.entries(grads).map(([name, g]) => [name, tf.mul(g, scale)]));
  });
}

/**
 * Gradient-norm clipping over one phase's gradients (as torch.nn.utils.clip_grad_norm_, without its epsilon).
 * Reports the norm before clipping as `grad-clip/norm_D` and `grad-clip/norm_G`.
 */
export function gradClip(options: GradClipOptions): GantryPlugin {
  checkOptions('gradClip', options, ['maxNorm', 'phase']);
  const { maxNorm, phase } = options;
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new GantryError(`gradClip maxNorm must be a positive number, got ${maxNorm}`);
  if (phase !== undefined && phase !== 'D' && phase !== 'G') throw new GantryError(`gradClip phase must be "D" or "G", got "${phase}"`);
  const handler = (grads: tf.NamedTensorMap, ctx: HookContext) => {
    if (Object.keys(grads).length === 0) return;
    // Reported inside tidy: right whether the core keeps the reported tensor or a clone of it.
    return tf.tidy(() => {
      const norm = globalNorm(grads);
      ctx.report(`norm_${ctx.phase}`, norm);
      return clipByGlobalNorm(grads, maxNorm, norm);
    });
  };
  return definePlugin({
    name: 'grad-clip',
    hooks: { transformGrads: phase ? { handler, phase } : handler },
  });
}
