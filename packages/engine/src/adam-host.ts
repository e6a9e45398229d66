import * as tf from '@tensorflow/tfjs-core';
import { adamStep, patchAdam, type AdamInternals } from './adam-patch.js';

/**
 * Weights up to this many values are updated in JavaScript; larger ones by the backend's element-wise kernels. Below
 * it the 14 kernel dispatches and 6 scalar uploads per weight (tens of µs each) cost more than a JavaScript loop
 * over the values (measured on wasm, see ENGINE.md).
 */
export const HOST_ADAM_MAX_SIZE = 16_384;

const f = Math.fround;

/** tfjs's Adam constants as float32, rounded where tfjs rounds them (a JavaScript number made into a float32 scalar). */
interface AdamConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  negLearningRate: number;
}

/**
 * One weight's update with tfjs's AdamOptimizer arithmetic, float32 op for op (each result rounded with fround, which
 * for +, −, ×, ÷ and √ of float32 values equals the correctly rounded float32 operation): bit-equal to
 * tf.train.adam on the cpu backend (which computes in float64 and stores float32, the same) and on wasm.
 */
export function adamUpdateHost(
  x: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  c: AdamConstants,
): [Float32Array, Float32Array, Float32Array] {
  const n = x.length;
  const newX = new Float32Array(n);
  const newM = new Float32Array(n);
  const newV = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = f(f(m[i] * c.beta1) + f(gi * c.oneMinusBeta1));
    const vi = f(f(v[i] * c.beta2) + f(f(gi * gi) * c.oneMinusBeta2));
    newM[i] = mi;
    newV[i] = vi;
    const mHat = f(mi / c.oneMinusAccBeta1);
    const vHat = f(vi / c.oneMinusAccBeta2);
    newX[i] = f(f(f(mHat / f(f(Math.sqrt(vHat)) + c.epsilon)) * c.negLearningRate) + x[i]);
  }
  return [newX, newM, newV];
}

/**
 * tf.train.adam's update on cpu and wasm: small weights in JavaScript (above), large ones with tfjs's own op sequence
 * but its six scalars uploaded once per update instead of once per weight. Bit-equal to tfjs's update.
 */
function hostAdam(optimizer: tf.AdamOptimizer, names: string[], gradients: (tf.Tensor | undefined)[]): boolean {
  const self = optimizer as unknown as AdamInternals;
  const c: AdamConstants = {
    beta1: f(self.beta1),
    oneMinusBeta1: f(1 - self.beta1),
    beta2: f(self.beta2),
    oneMinusBeta2: f(1 - self.beta2),
    oneMinusAccBeta1: f(1 - self.accBeta1.dataSync()[0]),
    oneMinusAccBeta2: f(1 - self.accBeta2.dataSync()[0]),
    epsilon: f(self.epsilon),
    negLearningRate: f(-self.learningRate),
  };
  // Uploaded at the first large weight, inside adamStep's tidy (which disposes them).
  let scalars: Record<keyof AdamConstants, tf.Scalar> | undefined;
  adamStep(optimizer, names, gradients, (value, m, v, gradient) => {
    let updated: tf.Tensor[];
    if (value.size <= HOST_ADAM_MAX_SIZE) {
      updated = adamUpdateHost(
        value.dataSync() as Float32Array,
        m.dataSync() as Float32Array,
        v.dataSync() as Float32Array,
        gradient.dataSync() as Float32Array,
        c,
      ).map((values) => tf.tensor(values, value.shape, 'float32'));
    } else {
      scalars ??= Object.fromEntries(Object.entries(c).map(([k, n]) => [k, tf.scalar(n)])) as Record<
        keyof AdamConstants,
        tf.Scalar
      >;
      const s = scalars;
      // tfjs's AdamOptimizer.applyGradients, op for op.
      const newM = tf.add(tf.mul(m, s.beta1), tf.mul(gradient, s.oneMinusBeta1));
      const newV = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(gradient), s.oneMinusBeta2));
      const mHat = tf.div(newM, s.oneMinusAccBeta1);
      const vHat = tf.div(newV, s.oneMinusAccBeta2);
      updated = [tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), s.epsilon)), s.negLearningRate), value), newM, newV];
    }
    value.assign(updated[0]);
    m.assign(updated[1]);
    v.assign(updated[2]);
  });
  return true;
}

/** Routes tf.train.adam's updates on cpu and wasm through hostAdam (idempotent). */
export function installHostAdam(backend: 'cpu' | 'wasm'): void {
  patchAdam(backend, hostAdam);
}
