import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bceWithLogits, hinge, leastSquares, minimax, nonSaturating } from '../src/losses.js';
import { cpu } from './helpers.js';

beforeAll(cpu);

const val = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};
const sig = (x: number) => 1 / (1 + Math.exp(-x));

describe('standard losses from logits', () => {
  const r = tf.tensor1d([2, -1, 0.5]);
  const f = tf.tensor1d([-3, 0, 1]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rv = [2, -1, 0.5];
  const fv = [-3, 0, 1];

  it('non-saturating and minimax D loss is binary cross-entropy', () => {
    const expected = mean(rv.map((x) => -Math.log(sig(x)))) + mean(fv.map((x) => -Math.log(1 - sig(x))));
    expect(val(nonSaturating().discriminatorLoss(r, f))).toBeCloseTo(expected, 5);
    expect(val(minimax().discriminatorLoss(r, f))).toBeCloseTo(expected, 5);
  });

  it('generator losses: non-saturating −log D(G(z)), minimax log(1 − D(G(z)))', () => {
    expect(val(nonSaturating().generatorLoss(f))).toBeCloseTo(mean(fv.map((x) => -Math.log(sig(x)))), 5);
    expect(val(minimax().generatorLoss(f))).toBeCloseTo(mean(fv.map((x) => Math.log(1 - sig(x)))), 5);
  });

  it('hinge and least-squares match their definitions', () => {
    const hingeD = mean(rv.map((x) => Math.max(0, 1 - x))) + mean(fv.map((x) => Math.max(0, 1 + x)));
    expect(val(hinge().discriminatorLoss(r, f))).toBeCloseTo(hingeD, 5);
    expect(val(hinge().generatorLoss(f))).toBeCloseTo(-mean(fv), 5);
    const lsD = 0.5 * mean(rv.map((x) => (x - 1) ** 2)) + 0.5 * mean(fv.map((x) => x * x));
    expect(val(leastSquares().discriminatorLoss(r, f))).toBeCloseTo(lsD, 5);
    expect(val(leastSquares().generatorLoss(f))).toBeCloseTo(0.5 * mean(fv.map((x) => (x - 1) ** 2)), 5);
  });

  it('stays finite for huge logits (computed from logits, not probabilities)', () => {
    const big = tf.tensor1d([100, -100]);
    expect(val(bceWithLogits(big, 1))).toBeCloseTo(50, 3); // softplus(-100)≈0, softplus(100)=100 → mean 50
    big.dispose();
  });
});
