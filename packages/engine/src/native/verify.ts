import * as tf from '@tensorflow/tfjs-core';
import { GantryError, registerNestedGradientFixes } from '@gantry/core';
import { registerLazyFusedGradients } from '../lazy-fused-gradients.js';
import { registerOffTapeLeakyReluGradient } from '../leaky-relu-gradient.js';
import { loadNativeBuild } from './load.js';
import type { NativeFlavour, NativeManifest } from './paths.js';

/** Relative error (max |a − b| / max |b|) the native results may have against the cpu backend. */
export const NATIVE_TOLERANCE = 1e-4;

export interface NativeCheck {
  name: string;
  relativeError: number;
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return a.length === b.length ? err / (scale || 1) : Infinity;
}

/** Each check builds its inputs from fixed seeds, so both backends see the same numbers. */
const CHECKS: Record<string, () => tf.Tensor> = {
  matmul: () => tf.matMul(tf.randomNormal([64, 100], 0, 1, 'float32', 1), tf.randomNormal([100, 30], 0, 1, 'float32', 2)),
  'conv filter gradient': () => {
    const x = tf.randomNormal([4, 9, 9, 3], 0, 1, 'float32', 3);
    const dy = tf.randomNormal([4, 5, 5, 8], 0, 1, 'float32', 4);
    return tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), dy)))(
      tf.randomNormal([3, 3, 3, 8], 0, 1, 'float32', 5),
    );
  },
  // d/dw ‖d/dx Σ leakyRelu(conv(x, w))²‖²: a gradient penalty's shape (through Conv2DBackpropInput and the
  // leaky-ReLU gradient's own gradient).
  'second-order gradient': () => {
    const x = tf.randomNormal([2, 7, 7, 2], 0, 1, 'float32', 6);
    return tf.grad((w: tf.Tensor) =>
      tf.sum(tf.square(tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.leakyRelu(tf.conv2d(xx as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), 0.2))))(x))),
    )(tf.randomNormal([3, 3, 2, 4], 0, 1, 'float32', 7));
  },
};

/** Runs the checks on the active `tensorflow` backend and on cpu; returns each relative error. */
export async function compareWithCpu(): Promise<NativeCheck[]> {
  tf.enableProdMode(); // before the cpu backend starts: silences its "install tfjs-node" banner
  await import('@tensorflow/tfjs-backend-cpu');
  registerNestedGradientFixes();
  registerOffTapeLeakyReluGradient();
  registerLazyFusedGradients();
  const results: NativeCheck[] = [];
  for (const [name, f] of Object.entries(CHECKS)) {
    const values: Float32Array[] = [];
    for (const backend of ['tensorflow', 'cpu']) {
      if (!(await tf.setBackend(backend))) throw new GantryError(`the ${backend} backend failed to initialise`);
      const out = tf.tidy(f);
      values.push((await out.data()) as Float32Array);
      out.dispose();
    }
    results.push({ name, relativeError: relativeError(values[0], values[1]) });
  }
  await tf.setBackend('tensorflow');
  return results;
}

/** Loads a build of `gantry setup tensorflow` and checks it; returns TensorFlow's version or throws naming the check. */
export async function verifyNativeBuild(flavour: NativeFlavour, dir: string, manifest: NativeManifest, log: (s: string) => void): Promise<string> {
  let detail: string;
  try {
    detail = loadNativeBuild(flavour, dir, manifest);
  } catch (err) {
    throw new GantryError(`setup tensorflow: the built addon does not load: ${String((err as Error).message).split('\n')[0]}`);
  }
  for (const check of await compareWithCpu()) {
    const ok = check.relativeError <= NATIVE_TOLERANCE;
    log(`  ${check.name}: relative error ${check.relativeError.toExponential(1)} ${ok ? 'ok' : `> ${NATIVE_TOLERANCE}`}`);
    if (!ok) throw new GantryError(`setup tensorflow: ${check.name} differs from the cpu backend (relative error ${check.relativeError.toExponential(2)})`);
  }
  return /libtensorflow (\S+)/.exec(detail)?.[1] ?? 'unknown';
}
