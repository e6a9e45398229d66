import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bceWithLogits, hinge, leastSquares, minimax, nonSaturating, relativisticAverage, rpgan } from '../src/losses.js';
import { useCpuBackend } from '../src/testing.js';

beforeAll(useCpuBackend);

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

  it('minimax and non-saturating discriminatorLossGradient: (σ(r) − 1)/n_r and σ(f)/n_f, equal to tf.grads bit for bit', () => {
    const closed = minimax().discriminatorLossGradient!(r, f);
    expect(Array.from(closed[0].dataSync())).toEqual(rv.map((x) => expect.closeTo((sig(x) - 1) / 3, 7)));
    expect(Array.from(closed[1].dataSync())).toEqual(fv.map((x) => expect.closeTo(sig(x) / 3, 7)));
    tf.dispose(closed);
    // Batch sizes of the toy runs (512 per member, 1 and 3 members), sizes that are no power of two, unequal parts.
    for (const [nr, nf, seed] of [[512, 512, 1], [1536, 1536, 2], [3, 5, 3], [1000, 700, 4], [1, 1, 5]]) {
      const logitsR = tf.mul(tf.randomNormal([nr, 1], 0, 1, 'float32', seed), 6);
      const logitsF = tf.mul(tf.randomNormal([nf, 1], 0, 1, 'float32', seed + 100), 6);
      for (const loss of [minimax(), nonSaturating()]) {
        const reference = tf.grads((a: tf.Tensor, b: tf.Tensor) => loss.discriminatorLoss(a, b))([logitsR, logitsF]);
        const fast = loss.discriminatorLossGradient!(logitsR, logitsF);
        expect(fast[0].shape).toEqual([nr, 1]);
        expect(Array.from(fast[0].dataSync())).toEqual(Array.from(reference[0].dataSync()));
        expect(Array.from(fast[1].dataSync())).toEqual(Array.from(reference[1].dataSync()));
        tf.dispose([...reference, ...fast]);
      }
      tf.dispose([logitsR, logitsF]);
    }
  });

  it('stays finite for huge logits (computed from logits, not probabilities)', () => {
    const big = tf.tensor1d([100, -100]);
    expect(val(bceWithLogits(big, 1))).toBeCloseTo(50, 3); // softplus(-100)≈0, softplus(100)=100 → mean 50
    big.dispose();
  });
});

describe('relativistic losses from hand-computed logits', () => {
  const rv = [2, -1, 0.5];
  const fv = [-3, 0, 1];
  const n = rv.length;
  const sp = (x: number) => Math.log1p(Math.exp(x));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  /** The loss value and its gradients with respect to both logit vectors. */
  function lossAndGrads(loss: (r: tf.Tensor, f: tf.Tensor) => tf.Scalar) {
    const r = tf.tensor1d(rv);
    const f = tf.tensor1d(fv);
    const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => loss(a, b))([r, f]);
    const out = { value: val(value), dr: Array.from(grads[0].dataSync()), df: Array.from(grads[1].dataSync()) };
    tf.dispose([r, f, ...grads]);
    return out;
  }

  it('RpGAN D: mean softplus(fᵢ − rᵢ); ∂/∂rᵢ = −σ(fᵢ − rᵢ)/N, ∂/∂fᵢ = σ(fᵢ − rᵢ)/N', () => {
    const { value, dr, df } = lossAndGrads((r, f) => rpgan().discriminatorLoss(r, f));
    // pairs: (2, −3) → softplus(−5), (−1, 0) → softplus(1), (0.5, 1) → softplus(0.5)
    expect(value).toBeCloseTo((sp(-5) + sp(1) + sp(0.5)) / 3, 6);
    rv.forEach((r, i) => expect(dr[i]).toBeCloseTo(-sig(fv[i] - r) / n, 6));
    fv.forEach((f, i) => expect(df[i]).toBeCloseTo(sig(f - rv[i]) / n, 6));
  });

  it('RpGAN G: mean softplus(rᵢ − fᵢ), gradient through D(fake) only when D(real) is constant', () => {
    const { value, df } = lossAndGrads((r, f) => rpgan().generatorLoss(f, r));
    expect(value).toBeCloseTo((sp(5) + sp(-1) + sp(-0.5)) / 3, 6);
    fv.forEach((f, i) => expect(df[i]).toBeCloseTo(-sig(rv[i] - f) / n, 6));
  });

  it('RaGAN D and G: softplus of each output against the mean of the other kind; gradients in closed form', () => {
    const mr = mean(rv);
    const mf = mean(fv);
    const d = lossAndGrads((r, f) => relativisticAverage().discriminatorLoss(r, f));
    expect(d.value).toBeCloseTo(mean(rv.map((r) => sp(mf - r))) + mean(fv.map((f) => sp(f - mr))), 6);
    const sumFake = sum(fv.map((f) => sig(f - mr)));
    const sumReal = sum(rv.map((r) => sig(mf - r)));
    rv.forEach((r, i) => expect(d.dr[i]).toBeCloseTo(-sig(mf - r) / n - sumFake / n ** 2, 6));
    fv.forEach((f, i) => expect(d.df[i]).toBeCloseTo(sumReal / n ** 2 + sig(f - mr) / n, 6));
    // G swaps the roles: the value is the D loss with real and fake exchanged.
    const g = lossAndGrads((r, f) => relativisticAverage().generatorLoss(f, r));
    expect(g.value).toBeCloseTo(mean(fv.map((f) => sp(mr - f))) + mean(rv.map((r) => sp(r - mf))), 6);
    const sumRealG = sum(rv.map((r) => sig(r - mf)));
    fv.forEach((f, i) => expect(g.df[i]).toBeCloseTo(-sig(mr - f) / n - sumRealG / n ** 2, 6));
  });

  it('generator losses declare D(real) (the trainer computes it only then) and refuse to run without it', () => {
    expect(rpgan().generatorLoss.length).toBe(2);
    expect(relativisticAverage().generatorLoss.length).toBe(2);
    const f = tf.tensor1d(fv);
    expect(() => rpgan().generatorLoss(f)).toThrow(/needs D\(real\)/);
    expect(() => rpgan().discriminatorLoss(tf.tensor1d([1, 2]), f)).toThrow(/pairs real and fake/);
    f.dispose();
  });
});
