import * as tf from '@tensorflow/tfjs-core';

/** TensorFlow eager ops and host-to-TensorFlow tensor uploads made through tfjs-node's addon. */
export interface NativeCallCounts {
  ops: number;
  uploads: number;
}

interface CountedBinding {
  executeOp: (...args: unknown[]) => unknown;
  createTensor: (...args: unknown[]) => unknown;
}

/**
 * Counts every call into TensorFlow from the tensorflow backend (tfjs-node's kernels and Gantry's, which call the
 * addon directly and so never show in tf.profile) until `stop()`, which returns the counts and unwraps the addon.
 * Undefined on other backends.
 */
export function countNativeCalls(): { stop(): NativeCallCounts } | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const backend = tf.backend() as unknown as { binding?: CountedBinding };
  const binding = backend.binding;
  if (binding == null) return undefined;
  const counts: NativeCallCounts = { ops: 0, uploads: 0 };
  // The addon's functions are read-only properties: the backend gets a counting object that inherits the rest.
  backend.binding = Object.create(binding, {
    executeOp: {
      value: (...args: unknown[]) => {
        counts.ops++;
        return binding.executeOp(...args);
      },
    },
    createTensor: {
      value: (...args: unknown[]) => {
        counts.uploads++;
        return binding.createTensor(...args);
      },
    },
  }) as CountedBinding;
  return {
    stop() {
      backend.binding = binding;
      return counts;
    },
  };
}
