import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { stackMembers, withSeed } from '@gantry/core';
import { adamCorrections, copyOptimizer, functionalModel, functionalUpdate, readUpdateRule } from '../src/index.js';
import { useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

const build = (layers: () => tfl.layers.Layer[]) => withSeed(5, () => tfl.sequential({ layers: layers() }));

/** A chain with every supported layer and activation; `secondActivation` for the second Dense layer. */
const everyLayerKind = (secondActivation: 'linear' | 'softplus' = 'linear') =>
  build(() => [
    tfl.layers.dense({ units: 6, activation: 'relu', inputShape: [2] }),
    tfl.layers.dense({ units: 5, activation: secondActivation }),
    tfl.layers.leakyReLU({ alpha: 0.3 }),
    tfl.layers.dense({ units: 4, useBias: false }),
    tfl.layers.reLU(),
    tfl.layers.dense({ units: 3 }),
    tfl.layers.activation({ activation: 'tanh' }),
    tfl.layers.dense({ units: 1, activation: 'sigmoid' }),
  ]);

describe('functionalModel', () => {
  it('reproduces model.apply for Dense/LeakyReLU/ReLU/Activation chains', () => {
    const model = everyLayerKind();
    const net = functionalModel(model);
    const x = tf.randomNormal([7, 2], 0, 1, 'float32', 3);
    const expected = model.apply(x) as tf.Tensor;
    const got = net.forward(
      x,
      net.weights.map((w) => w.read()),
    );
    const e = values(expected);
    values(got).forEach((v, i) => expect(v).toBeCloseTo(e[i], 6));
    expect(net.weights).toEqual(model.trainableWeights);
    tf.dispose([x, expected, got]);
  });

  it('forwardBackward: explicit backpropagation equals tf.grads for every supported layer and activation', () => {
    const model = everyLayerKind('softplus');
    const net = functionalModel(model);
    const x = tf.randomNormal([7, 2], 0, 1, 'float32', 3);
    const dOutput = tf.randomNormal([7, 1], 0, 1, 'float32', 4);
    const params = net.weights.map((w) => w.read());
    // Reference: the tape's gradient of <output, dOutput>, whose gradient at the output is dOutput.
    const expected = tf.grads((...p: tf.Tensor[]) => tf.sum(tf.mul(net.forward(x, p), dOutput)))(params);
    const { output, backward } = net.forwardBackward(x, params);
    const got = backward(dOutput);
    expect(values(output)).toEqual(values(net.forward(x, params)).map((v) => expect.closeTo(v, 6)));
    expect(got).toHaveLength(expected.length);
    got.forEach((g, i) => {
      expect(g.shape).toEqual(params[i].shape);
      const e = values(expected[i]);
      expect(e.some((v) => v !== 0)).toBe(true);
      values(g).forEach((v, k) => expect(v).toBeCloseTo(e[k], 6));
    });
  });

  it('member models (stackMembers): forward is model.apply, forwardBackward equals tf.grads', () => {
    const solo = [5, 6, 7].map((seed) => withSeed(seed, () => everyLayerKind('softplus')));
    const model = stackMembers(solo);
    const net = functionalModel(model);
    expect(net.members).toBe(3);
    const x = tf.randomNormal([12, 2], 0, 1, 'float32', 3);
    const dOutput = tf.randomNormal([12, 1], 0, 1, 'float32', 4);
    const params = net.weights.map((w) => w.read());
    const applied = values(model.apply(x) as tf.Tensor);
    expect(values(net.forward(x, params))).toEqual(applied.map((v) => expect.closeTo(v, 6)));
    const expected = tf.grads((...p: tf.Tensor[]) => tf.sum(tf.mul(net.forward(x, p), dOutput)))(params);
    const { output, backward } = net.forwardBackward(x, params);
    expect(values(output)).toEqual(applied.map((v) => expect.closeTo(v, 6)));
    const got = backward(dOutput);
    got.forEach((g, i) => {
      expect(g.shape).toEqual(params[i].shape);
      const e = values(expected[i]);
      expect(e.some((v) => v !== 0)).toBe(true);
      values(g).forEach((v, k) => expect(v).toBeCloseTo(e[k], 6));
    });
    // Member 1's weight gradients come from member 1's rows only: zero its rows of dOutput and they vanish.
    const mask = tf.concat([tf.ones([4, 1]), tf.zeros([4, 1]), tf.ones([4, 1])]);
    const masked = net.forwardBackward(x, params).backward(tf.mul(dOutput, mask));
    const kernel = values(masked[0]);
    const size = kernel.length / 3;
    expect(kernel.slice(size, 2 * size).every((v) => v === 0)).toBe(true);
    expect(kernel.slice(0, size).some((v) => v !== 0)).toBe(true);
  });

  it('rejects layers it cannot express, naming them', () => {
    const conv = build(() => [tfl.layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [8, 8, 1], name: 'c1' }), tfl.layers.flatten(), tfl.layers.dense({ units: 1 })]);
    expect(() => functionalModel(conv)).toThrow(/layer "c1" is Conv2D/);
    const dropout = build(() => [tfl.layers.dense({ units: 4, inputShape: [2] }), tfl.layers.dropout({ rate: 0.5, name: 'drop' }), tfl.layers.dense({ units: 1 })]);
    expect(() => functionalModel(dropout)).toThrow(/"drop" is Dropout/);
  });
});

describe('functional updates match the tfjs optimizers', () => {
  const lossOf = (model: tfl.LayersModel, x: tf.Tensor) => () => tf.mean(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar;

  for (const kind of ['sgd', 'adam'] as const) {
    it(`${kind}: k functional updates equal k applyGradients calls`, async () => {
      const model = build(() => [tfl.layers.dense({ units: 4, activation: 'tanh', inputShape: [2] }), tfl.layers.dense({ units: 1 })]);
      const x = tf.randomNormal([5, 2], 0, 1, 'float32', 8);
      const optimizer = kind === 'sgd' ? tf.train.sgd(0.1) : tf.train.adam(0.01, 0.5, 0.9);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      // Give Adam some history first, so moments and the step count matter.
      for (let i = 0; i < 3; i++) optimizer.minimize(lossOf(model, x), false, vars);
      const net = functionalModel(model);
      const rule = await readUpdateRule(optimizer);
      let params = net.weights.map((w) => tf.clone(w.read()));
      const moments = rule.kind === 'adam' ? { m: rule.m.map((m) => m!), v: rule.v.map((v) => v!) } : { m: [], v: [] };
      const lookahead = await copyOptimizer(optimizer);
      for (let j = 0; j < 4; j++) {
        const grads = tf.grads((...p: tf.Tensor[]) => tf.mean(tf.square(net.forward(x, p))) as tf.Scalar)(params);
        params = functionalUpdate(rule, params, grads, moments, j);
        lookahead.minimize(lossOf(model, x), false, vars);
      }
      params.forEach((p, i) => {
        const expected = values(vars[i]);
        values(p).forEach((v, k) => expect(v).toBeCloseTo(expected[k], 6));
      });
      lookahead.dispose();
      optimizer.dispose();
    });
  }

  it('adam: bias corrections computed beforehand (adamCorrections) give the same update bit for bit', async () => {
    const rule = { kind: 'adam' as const, learningRate: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-8, iterations: 6, m: [], v: [] };
    const p = tf.randomNormal([5, 3], 0, 1, 'float32', 1);
    const g = tf.randomNormal([5, 3], 0, 1, 'float32', 2);
    const state = () => ({ m: [tf.randomNormal([5, 3], 0, 0.1, 'float32', 3)], v: [tf.randomUniform([5, 3], 0, 0.01, 'float32', 4)] });
    for (const j of [0, 3]) {
      const corrections = adamCorrections(rule, j);
      const [plain] = functionalUpdate(rule, [p], [g], state(), j);
      const [precomputed] = functionalUpdate(rule, [p], [g], state(), j, corrections);
      expect(values(precomputed)).toEqual(values(plain));
      expect(values(corrections.beta1)[0]).toBeCloseTo(1 - 0.5 ** (7 + j), 7);
      expect(values(corrections.beta2)[0]).toBeCloseTo(1 - 0.999 ** (7 + j), 6);
    }
  });

  it('adam: the update as one tape node has the gradient of the same update written op by op, bit for bit', () => {
    const rule = { kind: 'adam' as const, learningRate: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-8, iterations: 6, m: [], v: [] };
    const g0 = tf.randomNormal([4, 3], 0, 1, 'float32', 5);
    const p0 = tf.randomNormal([4, 3], 0, 1, 'float32', 6);
    const m0 = tf.randomNormal([4, 3], 0, 0.1, 'float32', 7);
    // One gradient is exactly 0 in every update and v starts at 0 there: the floor of √ is what keeps that finite.
    const v0 = tf.mul(tf.randomUniform([4, 3], 0, 0.01, 'float32', 8), tf.tensor2d([[1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 1]]));
    const zeroAt = tf.tensor2d([[1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 1]]);
    const weights = tf.randomNormal([4, 3], 0, 1, 'float32', 9);
    // Three chained updates whose gradients depend on the parameters, so moments carry gradient between updates.
    const opByOp = (p: tf.Tensor, g: tf.Tensor, mIn: tf.Tensor, vIn: tf.Tensor) => {
      let [params, m, v] = [p, mIn, vIn];
      for (let j = 0; j < 3; j++) {
        const grad = tf.mul(tf.mul(tf.sin(tf.add(params, g)), zeroAt), 1 + j);
        const { beta1: c1, beta2: c2 } = adamCorrections(rule, j);
        m = tf.add(tf.mul(m, 0.5), tf.mul(grad, 1 - 0.5));
        v = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(grad), 1 - 0.999));
        const root = tf.sqrt(tf.maximum(tf.div(v, c2), 1e-30));
        params = tf.add(tf.mul(tf.div(tf.div(m, c1), tf.add(root, 1e-8)), -0.01), params);
      }
      return tf.sum(tf.mul(tf.add(params, tf.mul(tf.add(m, v), 3)), weights));
    };
    const functional = (p: tf.Tensor, g: tf.Tensor, mIn: tf.Tensor, vIn: tf.Tensor) => {
      let params = p;
      const state = { m: [mIn], v: [vIn] };
      for (let j = 0; j < 3; j++) {
        const grad = tf.mul(tf.mul(tf.sin(tf.add(params, g)), zeroAt), 1 + j);
        [params] = functionalUpdate(rule, [params], [grad], state, j, adamCorrections(rule, j));
      }
      return tf.sum(tf.mul(tf.add(params, tf.mul(tf.add(state.m[0], state.v[0]), 3)), weights));
    };
    const reference = tf.grads(opByOp)([p0, g0, m0, v0]);
    const oneNode = tf.grads(functional)([p0, g0, m0, v0]);
    reference.forEach((r, i) => expect(values(oneNode[i])).toEqual(values(r)));
    expect(values(reference[1]).every(Number.isFinite)).toBe(true);
    expect(values(tf.sub(opByOp(p0, g0, m0, v0), functional(p0, g0, m0, v0)))[0]).toBe(0);
  });

  it('copyOptimizer leaves the original state untouched', async () => {
    const model = build(() => [tfl.layers.dense({ units: 1, inputShape: [2] })]);
    const x = tf.ones([3, 2]);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const adam = tf.train.adam(0.1);
    adam.minimize(lossOf(model, x), false, vars);
    const before = (await adam.getWeights()).map((w) => values(w.tensor));
    const copy = await copyOptimizer(adam);
    for (let i = 0; i < 3; i++) copy.minimize(lossOf(model, x), false, vars);
    const after = (await adam.getWeights()).map((w) => values(w.tensor));
    expect(after).toEqual(before);
    expect(copy.iterations).toBe(4);
    copy.dispose();
  });
});
