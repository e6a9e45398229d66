import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

// g(a) = ∂/∂w f(w·a) at w = 0.5, then dg/da, against the analytic mixed second derivative f'(wa) + w·a·f''(wa).
const w = 0.5;
const a0 = 1.2;
const cases: [string, (x: tf.Tensor) => tf.Tensor, (u: number) => [number, number]][] = [
  ['tanh', tf.tanh, (u) => [1 - Math.tanh(u) ** 2, -2 * Math.tanh(u) * (1 - Math.tanh(u) ** 2)]],
  ['sigmoid', tf.sigmoid, (u) => { const s = 1 / (1 + Math.exp(-u)); return [s * (1 - s), s * (1 - s) * (1 - 2 * s)]; }],
  ['exp', tf.exp, (u) => [Math.exp(u), Math.exp(u)]],
  ['elu (x < 0)', tf.elu, (u) => [Math.exp(u), Math.exp(u)]],
];

describe('second-order gradients through output-saving activations', () => {
  for (const [name, f, derivs] of cases) {
    it(`${name}: mixed second derivative equals the closed form`, () => {
      const a = name.startsWith('elu') ? -a0 : a0;
      const [d1, d2] = derivs(w * a);
      const g = (at: tf.Tensor) => tf.grad((wt: tf.Tensor) => tf.sum(f(tf.mul(wt, at))))(tf.scalar(w));
      const got = tf.tidy(() => tf.grad(g)(tf.scalar(a)).dataSync()[0]);
      expect(got).toBeCloseTo(d1 + w * a * d2, 5);
    });
  }
});

// Sum and Mean are differentiated by broadcasting dy (no host-filled ones tensor); first and second order must hold.
describe('broadcast gradients of Sum and Mean', () => {
  it('equal the closed forms, first and second order', async () => {
    const xv = [0.3, -1.2, 2.5, 0.7, -0.4, 1.1, 0.05, -2];
    const x = tf.tensor3d(xv, [2, 2, 2]);
    const c = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    // d/dx mean(x * c over axes 1,2) summed over the batch = c / 4
    const g1 = await tf.grad((t: tf.Tensor) => tf.sum(tf.mean(tf.mul(t, c), [1, 2])))(x).data();
    expect(Array.from(g1)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((v) => v / 4));
    // d/dx sum(x * c, axis -1) summed = c
    const g2 = await tf.grad((t: tf.Tensor) => tf.sum(tf.sum(tf.mul(t, c), -1)))(x).data();
    expect(Array.from(g2)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Second order through Mean's gradient: h(x) = sum((d/dx mean(x^3))^2) = sum(9 x^4) / N^2, h' = 36 x^3 / N^2.
    const n = xv.length;
    const inner = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.mean(tf.pow(u, 3)))(t);
    const g3 = await tf.grad((t: tf.Tensor) => tf.sum(tf.square(inner(t))))(x).data();
    Array.from(g3).forEach((v, i) => expect(v).toBeCloseTo((36 * xv[i] ** 3) / n ** 2, 5));
    tf.dispose([x, c]);
  });

  it('broadcast back over merged axis runs at rank 5 (minibatch stddev shapes), equal to c / count', async () => {
    const shape = [2, 3, 2, 2, 2];
    const size = 48;
    const cv = Array.from({ length: size }, (_, i) => ((i * 7) % 11) - 5);
    const c = tf.tensor(cv, shape);
    const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
    // Each axis set: every element's gradient of sum(mean(x * c, axes)) is c / (product of the reduced sizes).
    for (const axes of [[0], [1, 2], [0, 2, 4], [0, 1, 2, 3, 4], [3, 4]]) {
      const count = axes.reduce((p, a) => p * shape[a], 1);
      const g = await tf.grad((t: tf.Tensor) => tf.sum(tf.mean(tf.mul(t, c), axes)))(x).data();
      Array.from(g).forEach((v, i) => expect(v).toBeCloseTo(cv[i] / count, 6));
      const s = await tf.grad((t: tf.Tensor) => tf.sum(tf.sum(tf.mul(t, c), axes, true)))(x).data();
      expect(Array.from(s)).toEqual(cv);
    }
    tf.dispose([x, c]);
  });
});
