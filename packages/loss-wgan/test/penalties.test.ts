import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, withSeed } from '@gantry/core';
import { gradientPenalty, gradientPenaltyLoss, r1, r2 } from '../src/index.js';
import { hookHandler, linearCritic, lossContext } from '@gantry/core/testing';
import type { GantryPlugin, LossContext } from '@gantry/core';

const lossTermsHandler = (plugin: GantryPlugin) => hookHandler<(ctx: LossContext) => tf.Scalar>(plugin, 'lossTerms');
const norm = (v: number[]) => Math.hypot(...v);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** GP value and its gradients with respect to the critic's trainable weights, through the plugin's lossTerms. */
function penaltyAndGrads(plugin: ReturnType<typeof gradientPenalty>, critic: tfl.LayersModel, real: tf.Tensor, fake: tf.Tensor, labels?: tf.Tensor, numClasses?: number) {
  const { ctx, reports } = lossContext({ discriminator: critic, real, fake, labels, numClasses, seed: 3 });
  const vars = critic.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => lossTermsHandler(plugin)(ctx), vars);
  // Weights the penalty does not depend on (the output bias) get no entry: their gradient is 0.
  const flat = vars.map((v) => (grads[v.name] ? Array.from(grads[v.name].dataSync()) : new Array<number>(v.size).fill(0)));
  return { value: value.dataSync()[0], grads: flat, reports };
}

describe('gradientPenalty: linear critic D(x) = w·x + b (‖∇ₓD‖ = ‖w‖ everywhere)', () => {
  const real = tf.randomUniform([6, 2, 2, 1], -1, 1, 'float32', 1);
  const fake = tf.randomUniform([6, 2, 2, 1], -1, 1, 'float32', 2);

  for (const w of [
    [1.5, 2, 0, 0], // ‖w‖ = 2.5
    [0.36, 0, -0.48, 0], // ‖w‖ = 0.6
  ]) {
    it(`‖w‖ = ${norm(w)}: GP = λ(‖w‖ − 1)², ∂GP/∂w = 2λ(‖w‖ − 1)·w/‖w‖, ∂GP/∂b = 0`, () => {
      const lambda = 10;
      const { value, grads, reports } = penaltyAndGrads(gradientPenalty({ lambda }), linearCritic([2, 2, 1], w), real, fake);
      const n = norm(w);
      expect(value).toBeCloseTo(lambda * (n - 1) ** 2, 4);
      const expected = w.map((wi) => (2 * lambda * (n - 1) * wi) / n);
      grads[0].forEach((g, i) => expect(g).toBeCloseTo(expected[i], 4));
      expect(grads[1][0]).toBeCloseTo(0, 6);
      expect(reports.grad_norm).toBeCloseTo(n, 5);
    });
  }

  it('one-sided: λ·max(0, ‖w‖ − 1)², zero with zero gradient below the target', () => {
    const above = penaltyAndGrads(gradientPenalty({ oneSided: true }), linearCritic([2, 2, 1], [1.5, 2, 0, 0]), real, fake);
    expect(above.value).toBeCloseTo(10 * 1.5 ** 2, 4);
    const below = penaltyAndGrads(gradientPenalty({ oneSided: true }), linearCritic([2, 2, 1], [0.36, 0, -0.48, 0]), real, fake);
    expect(below.value).toBe(0);
    expect(below.grads[0].every((g) => g === 0)).toBe(true);
  });

  it('target 2 and λ 3: 3(‖w‖ − 2)²', () => {
    const { value } = penaltyAndGrads(gradientPenalty({ lambda: 3, target: 2 }), linearCritic([2, 2, 1], [1.5, 2, 0, 0]), real, fake);
    expect(value).toBeCloseTo(3 * 0.5 ** 2, 5);
  });

  it('conditional critic: labels pass through, the penalty is on the image input only', () => {
    const critic = withSeed(4, () => {
      const x = tfl.input({ shape: [3] });
      const label = tfl.input({ shape: [4] });
      const out = tfl.layers.dense({ units: 1, name: 'out' }).apply(tfl.layers.concatenate().apply([x, label])) as tfl.SymbolicTensor;
      return tfl.model({ inputs: [x, label], outputs: out });
    });
    // D = w·x + v·onehot(label) + b with w = (2, 0, 0): ‖∇ₓD‖ = 2 whatever v is.
    critic.getLayer('out').setWeights([tf.tensor2d([2, 0, 0, 5, -7, 9, 1], [7, 1]), tf.tensor1d([0])]);
    const labels = tf.tensor1d([0, 3, 1, 2], 'int32');
    const { value } = penaltyAndGrads(
      gradientPenalty(),
      critic,
      tf.randomUniform([4, 3], -1, 1, 'float32', 5),
      tf.randomUniform([4, 3], -1, 1, 'float32', 6),
      labels,
      4,
    );
    expect(value).toBeCloseTo(10, 4);
  });

  it('rejects unknown and invalid options', () => {
    expect(() => gradientPenalty({ lamda: 10 } as never)).toThrow(/Unknown option "lamda"/);
    expect(() => gradientPenalty({ lambda: -1 })).toThrow(/lambda must be ≥ 0/);
  });
});

/** D(x) = ½ xᵀAx as a tfjs model: Dense(A, no bias) → multiply with x → fixed Dense of ½. ∇ₓD = Sx, S = (A + Aᵀ)/2. */
function quadraticCritic(a: number[][]): tfl.LayersModel {
  const d = a.length;
  const x = tfl.input({ shape: [d] });
  const ax = tfl.layers.dense({ units: d, useBias: false, name: 'A' }).apply(x) as tfl.SymbolicTensor;
  const prod = tfl.layers.multiply().apply([x, ax]) as tfl.SymbolicTensor;
  const half = tfl.layers.dense({ units: 1, useBias: false, trainable: false, name: 'half' }).apply(prod) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: half });
  model.getLayer('A').setWeights([tf.tensor2d(a)]);
  model.getLayer('half').setWeights([tf.fill([d, 1], 0.5)]);
  return model;
}

const A = [
  [1.0, 0.4, -0.3],
  [0.2, -0.8, 0.5],
  [0.7, 0.1, 1.3],
];
const S = A.map((row, i) => row.map((aij, j) => (aij + A[j][i]) / 2));
const mulS = (x: number[]) => S.map((row) => row.reduce((s, v, j) => s + v * x[j], 0));

describe('gradientPenalty: quadratic critic, one ε per sample', () => {
  it('GP = λ·mean((‖S x̂ₙ‖ − 1)²) with x̂ₙ = εₙxₙ + (1 − εₙ)x̃ₙ, ε drawn per sample from the run RNG', () => {
    const real = tf.randomUniform([5, 3], -1, 1, 'float32', 7);
    const fake = tf.randomUniform([5, 3], -1, 1, 'float32', 8);
    const critic = quadraticCritic(A);
    const { ctx } = lossContext({ discriminator: critic, real, fake, seed: 11 });
    const value = lossTermsHandler(gradientPenalty())(ctx).dataSync()[0];
    // The plugin's draw: the context's first seed, shape [N, 1].
    const eps = tf.randomUniform([5, 1], 0, 1, 'float32', new Rng(11).nextSeed()).dataSync();
    const xs = real.arraySync() as number[][];
    const fs = fake.arraySync() as number[][];
    const expected =
      (10 / 5) *
      xs.reduce((s, x, n) => {
        const xhat = x.map((xi, i) => eps[n] * xi + (1 - eps[n]) * fs[n][i]);
        return s + (norm(mulS(xhat)) - 1) ** 2;
      }, 0);
    expect(value).toBeCloseTo(expected, 4);
  });
});

describe('r1 / r2: quadratic critic D(x) = ½xᵀAx (∇ₓD = Sx)', () => {
  for (const which of ['r1', 'r2'] as const) {
    it(`${which}: (γ/2)·mean‖Sx‖² on ${which === 'r1' ? 'real' : 'fake'} data, ∂/∂A = (γ/2N)·Σ(g xᵀ + x gᵀ)`, () => {
      const gamma = 3;
      const real = tf.randomUniform([4, 3], -1, 1, 'float32', 9);
      const fake = tf.randomUniform([4, 3], -1, 1, 'float32', 10);
      const critic = quadraticCritic(A);
      const { ctx, reports } = lossContext({ discriminator: critic, real, fake });
      const plugin = which === 'r1' ? r1({ gamma }) : r2({ gamma });
      const kernel = critic.getLayer('A').trainableWeights[0].read() as tf.Variable;
      const { value, grads } = tf.variableGrads(() => lossTermsHandler(plugin)(ctx), [kernel]);
      const xs = ((which === 'r1' ? real : fake).arraySync() as number[][]);
      const gs = xs.map(mulS);
      const meanSq = gs.reduce((s, g) => s + norm(g) ** 2, 0) / xs.length;
      expect(value.dataSync()[0]).toBeCloseTo((gamma / 2) * meanSq, 4);
      expect(reports.grad_norm_sq).toBeCloseTo(meanSq, 4);
      const dA = grads[kernel.name].arraySync() as number[][];
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const expected = (gamma / (2 * xs.length)) * xs.reduce((s, x, n) => s + gs[n][i] * x[j] + x[i] * gs[n][j], 0);
          expect(dA[i][j]).toBeCloseTo(expected, 4);
        }
    });
  }

  it('requires gamma and rejects bad intervals', () => {
    expect(() => r1({} as never)).toThrow(/gamma is required/);
    expect(() => r2({ gamma: 1, every: 0 })).toThrow(/every must be a positive integer/);
  });
});

describe('gradientPenalty: conv critic (conv2d + leakyRelu + dense), second-order gradients vs finite differences', () => {
  it('∂GP/∂θ matches float32 central differences (h = 1e-2) within 2e-3 + 1e-2·|g| for every weight', () => {
    const critic = withSeed(25, () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3, padding: 'same', biasInitializer: 'randomNormal' }),
          tfl.layers.leakyReLU({ alpha: 0.2 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 1 }),
        ],
      }),
    );
    const real = tf.randomUniform([3, 4, 4, 1], -1, 1, 'float32', 26);
    const fake = tf.randomUniform([3, 4, 4, 1], -1, 1, 'float32', 27);
    const eps = tf.tensor4d([0.2, 0.5, 0.9], [3, 1, 1, 1]);
    const h = 1e-2;
    // Precondition: no conv pre-activation on the interpolates lies within h of leaky ReLU's kink, so a ±h change of
    // one weight (|x̂| ≤ 1) cannot flip an activation and the penalty is smooth where we difference it.
    const preActivations = critic.layers[0].apply(tf.add(tf.mul(eps, real), tf.mul(tf.sub(1, eps), fake))) as tf.Tensor;
    expect(tf.min(tf.abs(preActivations)).dataSync()[0]).toBeGreaterThan(1.5 * h);
    const discriminate = (x: tf.Tensor) => critic.apply(x, { training: true }) as tf.Tensor;
    const gp = () => {
      const { penalty, meanNorm } = gradientPenaltyLoss(discriminate, real, fake, eps);
      meanNorm.dispose();
      return penalty;
    };
    const vars = critic.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(gp, vars);
    expect(value.dataSync()[0]).toBeGreaterThan(0.1); // a penalty with some size, so the check means something
    let checked = 0;
    for (const v of vars) {
      // A weight the penalty does not depend on (the output bias) gets no entry: its gradient is 0.
      const analytic = grads[v.name]?.dataSync() ?? new Float32Array(v.size);
      const base = v.dataSync().slice();
      for (let k = 0; k < base.length; k++) {
        const at = (delta: number) => {
          const shifted = base.slice();
          shifted[k] += delta;
          v.assign(tf.tensor(shifted, v.shape));
          const p = gp();
          const out = p.dataSync()[0];
          p.dispose();
          return out;
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        v.assign(tf.tensor(base, v.shape));
        expect(Math.abs(analytic[k] - fd)).toBeLessThan(2e-3 + 1e-2 * Math.abs(fd));
        checked++;
      }
    }
    expect(checked).toBe(2 * 9 + 2 + 32 + 1);
  });
});
