import * as tf from '@tensorflow/tfjs-core';

/**
 * Comparison and rounding ops are piecewise constant, so their gradient is zero almost everywhere. tfjs registers no
 * gradient for them, which breaks nested gradients: leaky ReLU's gradient uses `Greater`, so differentiating a
 * gradient (gradient penalty, R1) fails with "gradient function not found for Greater". Registering zeros fixes it.
 */
const PIECEWISE_CONSTANT_OPS = [
  'Greater',
  'GreaterEqual',
  'Less',
  'LessEqual',
  'Equal',
  'NotEqual',
  'LogicalAnd',
  'LogicalOr',
  'LogicalNot',
  'LogicalXor',
  'IsNan',
  'IsInf',
  'IsFinite',
  'ZerosLike',
  'OnesLike',
] as const;

let registered = false;

export function registerZeroGradients(): void {
  if (registered) return;
  registered = true;
  for (const kernelName of PIECEWISE_CONSTANT_OPS) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: [],
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const like = Array.isArray(dy) ? dy[0] : dy;
        // Each input gets zeros of the output's shape; broadcasting inputs reduce correctly through sum of zeros.
        return { a: () => tf.zerosLike(like), b: () => tf.zerosLike(like), x: () => tf.zerosLike(like) };
      },
    });
  }
}
