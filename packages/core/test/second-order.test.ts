import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { cpu } from './helpers.js';

beforeAll(cpu);

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
