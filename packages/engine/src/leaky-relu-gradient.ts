import * as tf from '@tensorflow/tfjs-core';

let leakyReluReplaced = false;

/**
 * Runs one kernel of the active backend below the engine, so the result is a constant for the gradient tape. Used for
 * masks of piecewise-linear functions: their derivative is zero almost everywhere, and recording them would make a
 * nested gradient back-propagate zeros through the whole forward pass (two wasted conv gradients per layer).
 */
function untapedKernel(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor | null {
  const engine = tf.engine();
  const config = tf.getKernel(kernelName, engine.backendName);
  if (config == null) return null;
  const out = config.kernelFunc({ inputs, backend: engine.backend, attrs });
  if (Array.isArray(out)) return null;
  // tfjs-node's kernels return Tensors already (tracked by the engine), other backends TensorInfos.
  return out instanceof tf.Tensor ? out : engine.makeTensorFromTensorInfo(out);
}

/**
 * A backend kernel (inputs dy, x; attr alpha) that computes dy · (x > 0 ? 1 : α) in one pass — the same float32
 * products as multiplying by the Step factor. Backends that have one (tensorflow: TensorFlow's `LeakyReluGrad`)
 * get it for gradients that no tape records.
 */
export const LEAKY_RELU_GRAD_KERNEL = 'GantryLeakyReluGrad';

/** True while a gradient tape records (the gradient being computed will itself be differentiated). */
export function tapeRecording(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

/**
 * d leakyRelu(x) = dy · (x > 0 ? 1 : α); the factor is tfjs's Step kernel, computed off the tape. When no tape
 * records (tfjs back-propagates the outermost gradient after closing its tape), a backend's one-pass kernel replaces
 * Step and the product: nothing will differentiate the result.
 */
function registerLeakyReluGradient(): void {
  tf.unregisterGradient(tf.LeakyRelu);
  tf.registerGradient({
    kernelName: tf.LeakyRelu,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
      // With α ≥ 0, y = leakyRelu(x) > 0 exactly where x > 0: the mask from y is the same. Taking y leaves the layer's
      // pre-activation (a conv's or dense's BiasAdd) one consumer, so TensorFlow's graph optimizer can fuse
      // conv + bias + activation when a step runs as a graph (a second consumer made its remapper fail).
      const x = alpha >= 0 ? saved[1] : saved[0];
      return {
        x: () => {
          if (!tapeRecording()) {
            const dx = untapedKernel(LEAKY_RELU_GRAD_KERNEL, { dy: dy as tf.Tensor, x }, { alpha });
            if (dx != null) return dx;
          }
          const factor = untapedKernel(tf.Step, { x }, { alpha });
          if (factor == null) return tf.where(tf.greater(x, 0), dy as tf.Tensor, tf.mul(dy as tf.Tensor, alpha));
          const dx = tf.mul(dy as tf.Tensor, factor);
          factor.dispose();
          return dx;
        },
      };
    },
  });
}

/**
 * A leaky-ReLU gradient whose mask is off the tape: the same values as tfjs's (dy · 1 or dy · α), but a gradient
 * penalty no longer back-propagates zeros through the critic's whole forward pass. A speed-up, not a fix (tfjs's own
 * gradient is correct once `registerNestedGradientFixes` gave `Greater` a gradient), so it belongs to the engine:
 * `useBackend` registers it unless `kernels: 'required'`. Idempotent; replaces the gradient for every backend.
 */
export function registerOffTapeLeakyReluGradient(): void {
  if (leakyReluReplaced) return;
  leakyReluReplaced = true;
  registerLeakyReluGradient();
}
