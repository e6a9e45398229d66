import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { nonSaturating, withSeed, type LossContext } from '@gantry/core';
import { featureMatching, featureModel } from '../src/index.js';
import { expectFlatTensorCount, hookHandler, lossContext as builtContext, mlp, tinyTrainer, trainCountingTensors, useCpuBackend, values } from '@gantry/core/testing';

/** The generator phase's context for D on (real, fake), with the non-saturating loss. */
const lossContext = (D: tfl.LayersModel, real: tf.Tensor, fake: tf.Tensor): LossContext =>
  builtContext({ discriminator: D, real, fake, phase: 'G', loss: nonSaturating() }).ctx;

beforeAll(useCpuBackend);

type TermsHook = (ctx: LossContext) => tf.Scalar | Record<string, tf.Scalar>;

function discriminatorWithFeatures(): tfl.Sequential {
  return withSeed(3, () =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 4, activation: 'relu', inputShape: [2], name: 'feat' }),
        tfl.layers.dense({ units: 1, name: 'out' }),
      ],
    }),
  );
}

/** relu(x·W + b) averaged over the batch, in float64. */
function meanFeatures(x: number[][], kernel: number[], bias: number[]): number[] {
  const units = bias.length;
  const mean = new Array(units).fill(0);
  for (const row of x) {
    for (let u = 0; u < units; u++) {
      let s = bias[u];
      for (let i = 0; i < row.length; i++) s += row[i] * kernel[i * units + u];
      mean[u] += Math.max(0, s) / x.length;
    }
  }
  return mean;
}

describe('featureMatching', () => {
  it('the term is weight·‖E f(x) − E f(G(z))‖² on the chosen layer', () => {
    const D = discriminatorWithFeatures();
    const realRows = [
      [0.5, -0.2],
      [0.1, 0.9],
      [-0.7, 0.3],
    ];
    const fakeRows = [
      [0.2, 0.2],
      [-0.4, -0.8],
      [0.9, 0.1],
    ];
    const real = tf.tensor2d(realRows);
    const fake = tf.tensor2d(fakeRows);
    const hook = (featureMatching({ layer: 'feat', weight: 2.5 }).hooks!.lossTerms as { handler: TermsHook }).handler;
    const term = hook(lossContext(D, real, fake)) as tf.Scalar;
    const [kernel, bias] = D.getLayer('feat').getWeights().map(values);
    const a = meanFeatures(realRows, kernel, bias);
    const b = meanFeatures(fakeRows, kernel, bias);
    const expected = 2.5 * a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
    expect(term.dataSync()[0]).toBeCloseTo(expected, 6);
    expect(expected).toBeGreaterThan(0);
    tf.dispose([real, fake, term]);
  });

  it('defaults to the layer before the last and can address layers by index', () => {
    const D = mlp(2, 6, 1, 4);
    const byDefault = featureModel(D);
    expect(byDefault.outputs[0].sourceLayer).toBe(D.layers[1]);
    expect(byDefault.outputs[0].shape).toEqual([null, 6]);
    expect(featureModel(D, 0).outputs[0].sourceLayer).toBe(D.layers[0]);
    expect(() => featureModel(D, 'nope')).toThrow(/no feature layer "nope"/);
  });

  it("'replace' mode: the generator's loss is the feature-matching term alone (its value and gradient)", () => {
    const D = discriminatorWithFeatures();
    const G = mlp(3, 5, 2, 9);
    const z = tf.randomNormal([6, 3], 0, 1, 'float32', 1);
    const real = tf.randomNormal([6, 2], 0, 0.5, 'float32', 2);
    const weights = G.trainableWeights.map((w) => w.read() as tf.Variable);
    const replace = hookHandler<(loss: tf.Scalar, ctx: LossContext) => tf.Scalar>(featureMatching({ layer: 'feat', mode: 'replace' }), 'generatorLoss');
    const add = (featureMatching({ layer: 'feat' }).hooks!.lossTerms as { handler: TermsHook }).handler;
    // The core hands generatorLoss the adversarial loss; the replacement ignores it.
    const replaced = tf.variableGrads(() => {
      const ctx = lossContext(D, real, G.apply(z) as tf.Tensor);
      return replace(nonSaturating().generatorLoss(ctx.fakeLogits), ctx);
    }, weights);
    const alone = tf.variableGrads(() => add(lossContext(D, real, G.apply(z) as tf.Tensor)) as tf.Scalar, weights);
    expect(replaced.value.dataSync()[0]).toBeGreaterThan(0);
    expect(replaced.value.dataSync()[0]).toBe(alone.value.dataSync()[0]);
    for (const name of Object.keys(alone.grads)) expect(values(replaced.grads[name])).toEqual(values(alone.grads[name]));
    expect(featureMatching({ mode: 'replace' }).hooks!.lossTerms).toBeUndefined();
    tf.dispose([z, real, replaced.value, alone.value, ...Object.values(replaced.grads), ...Object.values(alone.grads)]);
  });

  it('trains with the term reported under G/feature-matching', async () => {
    const trainer = tinyTrainer([featureMatching()], { steps: 5 });
    const terms: number[] = [];
    trainer.on('step:end', (e) => void terms.push(e.scalars['G/feature-matching']));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    expect(terms.every((t) => Number.isFinite(t) && t >= 0)).toBe(true);
  });
});
