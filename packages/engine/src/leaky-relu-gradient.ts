import * as tf from '@tensorflow/tfjs-core';
import { timesStep } from '@gantry/core';

export { LEAKY_RELU_GRAD_KERNEL, tapeRecording } from '@gantry/core';

let leakyReluReplaced = false;

/**
 * d leakyRelu(x) = dy · (x > 0 ? 1 : α), and ReLU's with α = 0; the factor is tfjs's Step kernel, computed off the
 * tape. When no tape records (tfjs back-propagates the outermost gradient after closing its tape), a backend's one-pass
 * kernel replaces Step and the product: nothing will differentiate the result (core's `timesStep`). tfjs's ReLU
 * gradient is dy · step(x), the same float32 products.
 */
function registerStepMaskGradient(kernelName: string, alphaOf: (attrs: tf.NamedAttrMap) => number): void {
  tf.unregisterGradient(kernelName);
  tf.registerGradient({
    kernelName,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const alpha = alphaOf(attrs);
      // With α ≥ 0, y = leakyRelu(x) > 0 exactly where x > 0: the mask from y is the same. Taking y leaves the layer's
      // pre-activation (a conv's or dense's BiasAdd) one consumer, so TensorFlow's graph optimizer can fuse
      // conv + bias + activation when a step runs as a graph (a second consumer made its remapper fail).
      const x = alpha >= 0 ? saved[1] : saved[0];
      return {
        x: () => {
          // tfjs's ReLU takes int32 too (its gradient casts): only float32 goes to the kernels.
          if (x.dtype !== 'float32') return tf.mul(dy as tf.Tensor, tf.step(tf.cast(x, 'float32'), alpha));
          return timesStep(dy as tf.Tensor, x, alpha);
        },
      };
    },
  });
}

/**
 * Leaky-ReLU and ReLU gradients whose mask is off the tape: the same values as tfjs's (dy · 1 or dy · α), but a
 * gradient penalty no longer back-propagates zeros through the critic's whole forward pass, and an unrolled lookahead
 * (ReLU) no longer through every update. A speed-up, not a fix (tfjs's own
 * gradient is correct once `registerNestedGradientFixes` gave `Greater` a gradient), so it belongs to the engine:
 * `useBackend` registers it unless `kernels: 'required'`. Idempotent; replaces the gradient for every backend.
 */
export function registerOffTapeLeakyReluGradient(): void {
  if (leakyReluReplaced) return;
  leakyReluReplaced = true;
  registerStepMaskGradient(tf.LeakyRelu, (attrs) => (attrs as unknown as tf.LeakyReluAttrs).alpha);
  registerStepMaskGradient(tf.Relu, () => 0);
}
