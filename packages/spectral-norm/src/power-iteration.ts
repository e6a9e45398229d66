import * as tf from '@tensorflow/tfjs-core';

/** Layers whose kernel SpectralNormalization knows how to view as a matrix. */
export const ELIGIBLE_CLASSES = ['Dense', 'Conv2D', 'Conv2DTranspose'] as const;
export type EligibleClassName = (typeof ELIGIBLE_CLASSES)[number];

/**
 * Axis of the kernel that holds the output channels (the matrix rows in torch.nn.utils.spectral_norm). tfjs stores
 * Dense kernels as [in, out], Conv2D kernels as [kh, kw, in, out] and Conv2DTranspose kernels as [kh, kw, out, in].
 */
export function outputAxis(className: EligibleClassName, kernelRank: number): number {
  return className === 'Conv2DTranspose' ? kernelRank - 2 : kernelRank - 1;
}

/**
 * The kernel as a [fanIn, out] matrix M, i.e. the transpose of torch's [out, fanIn] weight matrix W (same singular
 * values, no explicit transpose needed: Wᵀu = Mu and Wv = Mᵀv).
 */
export function kernelAsMatrix(kernel: tf.Tensor, outAxis: number): tf.Tensor2D {
  return tf.tidy(() => {
    const rank = kernel.rank;
    const outLast =
      outAxis === rank - 1
        ? kernel
        : tf.transpose(kernel, [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== outAxis), outAxis]);
    const out = kernel.shape[outAxis];
    return tf.reshape(outLast, [-1, out]) as tf.Tensor2D;
  });
}

function normalize(x: tf.Tensor, epsilon: number): tf.Tensor {
  // Same as torch F.normalize: x / max(‖x‖, ε), so an all-zero kernel does not divide by zero.
  return tf.div(x, tf.maximum(tf.norm(x), epsilon));
}

/**
 * Runs `iterations` rounds of power iteration on M = [fanIn, out] from `u` (length out): each round is
 * v ← Mu/‖Mu‖, u ← Mᵀv/‖Mᵀv‖ (torch's order). Returns the unit-length u (length out) and v (length fanIn). The result is constant for autodiff (zero gradient), like the
 * `torch.no_grad()` block of torch's spectral_norm: σ = vᵀ M u then carries gradient only through M.
 * With `iterations = 0` it only normalizes u and derives v from it (evaluation mode).
 */
export function powerIteration(
  matrix: tf.Tensor2D,
  u: tf.Tensor1D,
  iterations: number,
  epsilon = 1e-12,
): { u: tf.Tensor1D; v: tf.Tensor1D } {
  const fanIn = matrix.shape[0];
  const out = matrix.shape[1];
  // customGrad runs its forward with the tape off and gives both inputs zero gradients: a stop-gradient.
  const detached = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [m, u0] = args as [tf.Tensor, tf.Tensor];
    const value = tf.tidy(() => {
      let uCol = normalize(tf.reshape(u0, [out, 1]), epsilon);
      let vCol = normalize(tf.matMul(m, uCol), epsilon);
      // torch's order: v ← normalize(Wᵀu), u ← normalize(Wv), with W = Mᵀ.
      for (let i = 1; i < iterations; i++) {
        uCol = normalize(tf.matMul(m, vCol, true, false), epsilon);
        vCol = normalize(tf.matMul(m, uCol), epsilon);
      }
      if (iterations > 0) uCol = normalize(tf.matMul(m, vCol, true, false), epsilon);
      return tf.concat([tf.reshape(uCol, [out]), tf.reshape(vCol, [fanIn])]);
    });
    return { value, gradFunc: () => [tf.zerosLike(m), tf.zerosLike(u0)] };
  });
  return tf.tidy(() => {
    const both = detached(matrix, u);
    return { u: tf.slice(both, 0, out) as tf.Tensor1D, v: tf.slice(both, out, fanIn) as tf.Tensor1D };
  });
}

/** σ = vᵀ M u: the spectral-norm estimate, differentiable in M with u and v held constant. */
export function sigmaEstimate(matrix: tf.Tensor2D, u: tf.Tensor1D, v: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.mul(v, tf.squeeze(tf.matMul(matrix, tf.reshape(u, [-1, 1]))))) as tf.Scalar);
}
