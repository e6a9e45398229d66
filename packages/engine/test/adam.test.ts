// Registers the cpu backend these tests compare with, also when a filter (-t) skips the tests that would load it.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_ADAM_MAX_SIZE, adamUpdateHost } from '../src/adam-host.js';
import { stockAdamApply } from '../src/adam-patch.js';
import { useBackend } from '../src/index.js';

afterAll(async () => {
  await tf.setBackend('cpu');
});

let counter = 0;

/**
 * `steps` updates of two identical weights sets, one through tf.train.adam (patched by useBackend) and one through
 * tfjs's own applyGradients; returns every weight, m and v of both.
 */
async function patchedAndStock(shapes: number[][], steps: number, betas: [number, number]): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (const patched of [true, false]) {
    const names = shapes.map(() => `hostAdam${counter++}`);
    const xs = shapes.map((s, i) => tf.tidy(() => tf.variable(tf.randomNormal(s, 0, 0.3, 'float32', i + 1), true, names[i])));
    const optimizer = tf.train.adam(0.01, ...betas);
    for (let t = 0; t < steps; t++) {
      // Gradients whose scale changes per step and per weight; one weight gets none every third step.
      const grads = shapes.map((s, i) => ({
        name: names[i],
        tensor: tf.randomNormal(s, 0.05, 10 ** -(i % 4) * (t + 1), 'float32', 100 * t + i + 1),
      }));
      // tfjs keys the moments by position: a missing gradient is an entry without a tensor.
      const given =
        t % 3 === 2 ? [{ name: names[0], tensor: undefined as unknown as tf.Tensor }, ...grads.slice(1)] : grads;
      if (patched) optimizer.applyGradients(given);
      else stockAdamApply(optimizer, given);
      tf.dispose(grads.map((g) => g.tensor));
    }
    const state = await optimizer.getWeights();
    out.push([
      ...xs.map((x) => x.dataSync() as Float32Array),
      ...state.slice(1).map((w) => w.tensor.dataSync() as Float32Array),
    ]);
    state[0].tensor.dispose();
    optimizer.dispose();
    tf.dispose(xs);
  }
  return out;
}

describe('tf.train.adam on cpu and wasm (adam-host.ts)', () => {
  it('one host update equals the closed form of the first step: x − lr·g/(|g| + ε), m = (1 − β₁)g, v = (1 − β₂)g²', () => {
    const x = Float32Array.from([0.5, -1.25, 2, 0.001]);
    const g = Float32Array.from([0.1, -3, 0, 1e-4]);
    const f = Math.fround;
    const [newX, m, v] = adamUpdateHost(x, new Float32Array(4), new Float32Array(4), g, {
      beta1: f(0.9),
      oneMinusBeta1: f(0.1),
      beta2: f(0.999),
      oneMinusBeta2: f(0.001),
      oneMinusAccBeta1: f(1 - f(0.9)),
      oneMinusAccBeta2: f(1 - f(0.999)),
      epsilon: f(1e-7),
      negLearningRate: f(-0.01),
    });
    // tfjs's constants: float32(1 − β) for the new term, 1 − float32(β) for the correction (1.3e-5 apart for 0.999).
    Array.from(g).forEach((gi, i) => {
      expect(Math.abs(m[i] - 0.1 * gi)).toBeLessThanOrEqual(1e-7 * Math.abs(0.1 * gi));
      expect(Math.abs(v[i] - 0.001 * gi * gi)).toBeLessThanOrEqual(3e-7 * 0.001 * gi * gi);
      const update = (0.01 * gi) / (Math.abs(gi) + 1e-7);
      expect(Math.abs(x[i] - newX[i] - update)).toBeLessThanOrEqual(1e-5 * Math.abs(update) + 1e-7);
    });
    expect(newX[2]).toBe(x[2]);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: bit-equal to tfjs's own update over 7 steps, small weights (host) and large (kernels), β₁ 0.5 and 0`, async () => {
      // Two threads, as kernels.test.ts wants them: the wasm module starts once per process (one fork for all files).
      await useBackend(backend, { quiet: true, threads: 2 });
      const shapes = [[3], [5, 4], [64, 33], [HOST_ADAM_MAX_SIZE + 1]];
      for (const betas of [
        [0.5, 0.999],
        [0, 0.9],
      ] as [number, number][]) {
        const before = tf.memory().numTensors;
        const [patched, stock] = await patchedAndStock(shapes, 7, betas);
        expect(patched.length).toBe(3 * shapes.length);
        patched.forEach((p, i) => expect(Array.from(p), `tensor ${i}, betas ${betas}`).toEqual(Array.from(stock[i])));
        expect(tf.memory().numTensors).toBe(before);
      }
    });
  }
});
