import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { SETUP_HINT, captureSteps, useBackend } from '@gantry/engine';
import { relativeError } from '../../engine/test/kernels-reference.js';

const required = process.env.GANTRY_REQUIRE_NATIVE === '1';
const native = await useBackend('tensorflow', { quiet: true }).then(
  () => null,
  (err: Error) => err.message,
);
if (native != null && required) throw new Error(`GANTRY_REQUIRE_NATIVE=1 but ${native}`);

const LR = 0.01;
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;

/**
 * Hand-picked weights and a gradient per step. Weights start at 0 and each gradient keeps its sign, so a weight is
 * the sum of its updates, with no cancellation: its relative error is the updates' error. One gradient is at ε's
 * scale, one is 0 throughout (its weight must not move).
 */
const X0 = [0, 0, 0, 0, -1.25, 0];
const GRADIENTS = [
  [0.1, -3, 1e-4, 2e-7, 0, 0.5],
  [0.2, -2.5, 3e-4, 3e-7, 0, 0.01],
  [0.05, -1, 2e-4, 1e-7, 0, 0.25],
  [0.3, -0.5, 1e-4, 5e-7, 0, 1],
  [0.1, -2, 3e-4, 2e-7, 0, 2],
];

/** Adam (Kingma & Ba, with ε added to √v̂ as tfjs does) in float64 with the exact β's: the closed form. */
function adamFloat64(steps: number): number[] {
  const x = [...X0];
  const m = X0.map(() => 0);
  const v = X0.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    GRADIENTS[t - 1].forEach((g, i) => {
      m[i] = BETA1 * m[i] + (1 - BETA1) * g;
      v[i] = BETA2 * v[i] + (1 - BETA2) * g * g;
      const mHat = m[i] / (1 - BETA1 ** t);
      const vHat = v[i] / (1 - BETA2 ** t);
      x[i] -= (LR * mHat) / (Math.sqrt(vHat) + EPSILON);
    });
  }
  return x;
}

let counter = 0;

/** Gradients by weight name; undefined: no gradient (tfjs's type says Variable, its code takes any tensor). */
const gradientMap = (map: Record<string, tf.Tensor | undefined>) =>
  map as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0];

/** `steps` updates of tf.train.adam on the current backend; the weights after each step, and the optimizer state. */
async function adamOnBackend(backend: string, steps: number, plainOps = false): Promise<{ xs: number[][]; m: number[]; v: number[] }> {
  await useBackend(backend as 'cpu' | 'tensorflow', { quiet: true });
  // A step capture that never records: the update as plain TensorFlow ops, as graph steps run it.
  const capture = plainOps ? captureSteps({ warmup: Number.POSITIVE_INFINITY }) : undefined;
  const name = `adamTestX${counter++}`;
  const x = tf.variable(tf.tensor1d(X0), true, name);
  const optimizer = tf.train.adam(LR, BETA1, BETA2, EPSILON);
  const xs: number[][] = [];
  for (let t = 0; t < steps; t++) {
    const g = tf.tensor1d(GRADIENTS[t]);
    optimizer.applyGradients([{ name, tensor: g }]);
    g.dispose();
    xs.push(Array.from(await x.data()));
  }
  const state = await optimizer.getWeights();
  const [m, v] = await Promise.all([state[1].tensor.data(), state[2].tensor.data()]);
  state[0].tensor.dispose();
  optimizer.dispose();
  x.dispose();
  capture?.dispose();
  await tf.setBackend('tensorflow');
  return { xs, m: Array.from(m), v: Array.from(v) };
}

/** Per element, |a − b| / |b| (exactly 0 where b is 0 must be 0 in a too). */
function elementwiseRelative(a: number[], b: number[]): number {
  return Math.max(...a.map((ai, i) => (b[i] === 0 ? Math.abs(ai) : Math.abs(ai - b[i]) / Math.abs(b[i]))));
}

describe.skipIf(native != null)(`tf.train.adam on the tensorflow backend (ResourceApplyAdam; ${SETUP_HINT})`, () => {
  it('equals the float64 closed form to 1e-6 per element over 5 steps, fused and as plain ops for graphs (tfjs stock: within 5e-5, float32 bias corrections)', async () => {
    const fused = await adamOnBackend('tensorflow', GRADIENTS.length);
    const stock = await adamOnBackend('cpu', GRADIENTS.length);
    const plain = await adamOnBackend('tensorflow', GRADIENTS.length, true);
    for (let t = 1; t <= GRADIENTS.length; t++) {
      const want = adamFloat64(t);
      expect(elementwiseRelative(fused.xs[t - 1], want), `fused step ${t}`).toBeLessThanOrEqual(1e-6);
      expect(elementwiseRelative(plain.xs[t - 1], want), `plain-ops step ${t}`).toBeLessThanOrEqual(1e-6);
      expect(elementwiseRelative(stock.xs[t - 1], want), `stock step ${t}`).toBeLessThanOrEqual(5e-5);
    }
    // First step in closed form: m̂ = g, v̂ = g², so x₁ = x₀ − lr·g/(|g| + ε); a zero gradient leaves the weight alone.
    const first = X0.map((x, i) => x - (LR * GRADIENTS[0][i]) / (Math.abs(GRADIENTS[0][i]) + EPSILON));
    expect(elementwiseRelative(fused.xs[0], first)).toBeLessThanOrEqual(1e-6);
    expect(fused.xs[4][4]).toBe(X0[4]);
  });

  it("matches tf.train.adam on cpu over 20 steps of a random problem: weights 1e-6; displacement, m, v within tfjs's own rounding", async () => {
    const shape = [64, 33];
    const run = async (backend: string) => {
      await useBackend(backend as 'cpu' | 'tensorflow', { quiet: true });
      const name = `adamRandom${counter++}`;
      const x = tf.variable(tf.randomNormal(shape, 0, 0.2, 'float32', 1), true, name);
      const x0 = Array.from(await x.data());
      const optimizer = tf.train.adam(2e-4, 0.5, 0.999);
      for (let t = 0; t < 20; t++) {
        const g = tf.randomNormal(shape, 0.01, 1e-3 * (t + 1), 'float32', 100 + t);
        optimizer.applyGradients([{ name, tensor: g }]);
        g.dispose();
      }
      const state = await optimizer.getWeights();
      const out = {
        x: Array.from(await x.data()),
        moved: [] as number[],
        m: Array.from(await state[1].tensor.data()),
        v: Array.from(await state[2].tensor.data()),
      };
      out.moved = out.x.map((xi, i) => xi - x0[i]);
      state[0].tensor.dispose();
      optimizer.dispose();
      x.dispose();
      return out;
    };
    const stock = await run('cpu');
    const fused = await run('tensorflow');
    expect(relativeError(fused.x, stock.x)).toBeLessThanOrEqual(1e-6);
    // The displacement differs by tfjs's float32 bias corrections (see the closed-form test); v also because tfjs
    // decays it with float32(β₂) but weights g² with float32(1 − β₂), 1.3e-5 more than TensorFlow's 1 − float32(β₂).
    expect(relativeError(fused.moved, stock.moved)).toBeLessThanOrEqual(5e-5);
    expect(relativeError(fused.m, stock.m)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(fused.v, stock.v)).toBeLessThanOrEqual(2e-5);
    expect(relativeError(fused.v, stock.v)).toBeGreaterThan(0);
  });

  it('updates in place when only the variables hold the values (no copy-on-write); a tensor sharing a weight keeps its values', async () => {
    await tf.setBackend('tensorflow');
    const name = `adamInPlace${counter++}`;
    const x = tf.variable(tf.tensor1d([1, 2, 3]), true, name);
    const optimizer = tf.train.adam(0.1);
    const g = tf.tensor1d([0.5, -0.5, 1]);
    // The addon calls of one update, in order: which tensors are released before ResourceApplyAdam writes.
    type Binding = { executeOp(name: string, ...rest: unknown[]): unknown; deleteTensor(id: number): void };
    const backend = tf.backend() as unknown as { binding: Binding };
    const binding = backend.binding;
    const releasedBeforeApply = () => {
      const calls: string[] = [];
      backend.binding = Object.create(binding, {
        executeOp: { value: (op: string, ...rest: unknown[]) => (calls.push(op), binding.executeOp(op, ...rest)) },
        deleteTensor: { value: (id: number) => (calls.push('delete'), binding.deleteTensor(id)) },
      }) as Binding;
      try {
        optimizer.applyGradients([{ name, tensor: g }]);
      } finally {
        backend.binding = binding;
      }
      return calls.slice(0, calls.indexOf('ResourceApplyAdam')).filter((c) => c === 'delete').length;
    };
    const xs: number[][] = [];
    expect(releasedBeforeApply()).toBe(0); // first update: the resources are written from the tfjs variables
    xs.push(Array.from(await x.data()));
    const held = tf.clone(x); // shares the weight's data
    expect(releasedBeforeApply()).toBe(2); // m and v only
    xs.push(Array.from(await x.data()));
    expect(Array.from(await held.data())).toEqual(xs[0]);
    held.dispose();
    const before = tf.memory().numTensors;
    expect(releasedBeforeApply()).toBe(3); // weight, m and v
    xs.push(Array.from(await x.data()));
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose([x, g]);

    // The same three updates in float64 (lr 0.1 and tfjs's defaults β₁ 0.9, β₂ 0.999, ε 1e-7).
    const [x64, m, v] = [[1, 2, 3], [0, 0, 0], [0, 0, 0]];
    xs.forEach((got, t) => {
      [0.5, -0.5, 1].forEach((gi, i) => {
        m[i] = 0.9 * m[i] + 0.1 * gi;
        v[i] = 0.999 * v[i] + 0.001 * gi * gi;
        x64[i] -= (0.1 * m[i]) / (1 - 0.9 ** (t + 1)) / (Math.sqrt(v[i] / (1 - 0.999 ** (t + 1))) + 1e-7);
      });
      expect(elementwiseRelative(got, x64), `step ${t + 1}`).toBeLessThanOrEqual(1e-6);
    });
  });

  it('keeps the state format, follows outside assignments and restored state, skips a missing gradient, leaks nothing', async () => {
    await tf.setBackend('tensorflow');
    const [a, b] = [`adamA${counter}`, `adamB${counter++}`];
    const xa = tf.variable(tf.tensor1d([1, 2, 3]), true, a);
    const xb = tf.variable(tf.tensor2d([[1, -1]]), true, b);
    const optimizer = tf.train.adam(0.1);
    const ga = tf.tensor1d([0.5, -0.5, 1]);
    const gb = tf.tensor2d([[1, 2]]);
    const step = (withB = true) => optimizer.applyGradients(gradientMap({ [a]: ga, [b]: withB ? gb : undefined }));
    const stateValues = async (opt: tf.Optimizer) => {
      const weights = await opt.getWeights();
      weights[0].tensor.dispose();
      return Promise.all(weights.slice(1).map(async (w) => Array.from(await w.tensor.data())));
    };
    step();
    const before = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(before);

    // Same names and order as tfjs's AdamOptimizer: what checkpoints save.
    const state = await optimizer.getWeights();
    expect(state.map((w) => w.name)).toEqual(['iter', `${a}/m`, `${b}/m`, `${a}/v`, `${b}/v`]);
    expect(state.map((w) => w.tensor.shape)).toEqual([[], [3], [1, 2], [3], [1, 2]]);
    expect((await state[0].tensor.data())[0]).toBe(3);
    state[0].tensor.dispose();

    // A gradient-less weight keeps its value and moments; the other moves.
    const [aBefore, bBefore] = [Array.from(await xa.data()), Array.from(await xb.data())];
    const moments = await stateValues(optimizer);
    step(false);
    expect(Array.from(await xb.data())).toEqual(bBefore);
    expect(Array.from(await xa.data())).not.toEqual(aBefore);
    const after = await stateValues(optimizer);
    expect([after[1], after[3]]).toEqual([moments[1], moments[3]]);

    // An assignment from outside (a restore) is what the next update starts from: x₁ = x₀ − update, whatever came before.
    const copy = tf.train.adam(0.1);
    const saved = await optimizer.getWeights();
    await copy.setWeights(saved);
    saved[0].tensor.dispose();
    const moved = await Promise.all(
      [optimizer, copy].map(async (opt) => {
        const start = tf.tensor1d([10, 20, 30]);
        xa.assign(start);
        start.dispose();
        opt.applyGradients(gradientMap({ [a]: ga, [b]: gb }));
        return Array.from(await xa.data());
      }),
    );
    // The copy restored the same moments and step count (setWeights recomputes β₁ᵗ, β₂ᵗ as one power: last-bit
    // differences), so both updates are the same from the same start.
    expect(
      relativeError(
        moved[1].map((x, i) => x - [10, 20, 30][i]),
        moved[0].map((x, i) => x - [10, 20, 30][i]),
      ),
    ).toBeLessThanOrEqual(1e-6);
    expect(moved[0][0]).toBeLessThan(10);

    const count = tf.memory().numTensors;
    copy.dispose();
    optimizer.dispose();
    // Each optimizer's m and v (2 weights × 2) and β₁ᵗ, β₂ᵗ are gone.
    expect(count - tf.memory().numTensors).toBe(2 * 6);
    tf.dispose([xa, xb, ga, gb]);
  });
});
