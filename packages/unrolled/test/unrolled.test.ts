import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, definePlugin, memberRows, nonSaturating, registerNestedGradientFixes, stackMembers, withSeed, type LossContext, type Trainer } from '@gantry/core';
import { unrolled } from '../src/index.js';
import {
  expectFlatTensorCount,
  hookHandler,
  lossContext,
  memberTrainer,
  memberWeights,
  tinyTrainer,
  trainCountingTensors,
  useCpuBackend,
  values,
  weightValues,
} from '@gantry/core/testing';

beforeAll(async () => {
  await useCpuBackend();
  registerNestedGradientFixes();
});

const optimizerState = async (opt: tf.Optimizer) => {
  const state = await opt.getWeights();
  const out = state.map((s) => values(s.tensor));
  state[0].tensor.dispose();
  return out;
};

describe('unrolled first-order', () => {
  it('restores the discriminator weights and optimizer state exactly after the generator step', async () => {
    // Step 1's D phase is identical with and without unrolling (same draws), so after the step the discriminator and
    // its optimizer must match a plain run exactly.
    const plain = tinyTrainer([], { steps: 1 });
    await plain.train();
    const withLookahead = tinyTrainer([unrolled({ steps: 3 })], { steps: 1 });
    await withLookahead.train();
    expect(weightValues(withLookahead.discriminator)).toEqual(weightValues(plain.discriminator));
    expect(await optimizerState(withLookahead.optimizers.discriminator)).toEqual(await optimizerState(plain.optimizers.discriminator));
    // ...while the generator trained against a different (unrolled) discriminator.
    expect(weightValues(withLookahead.generator)).not.toEqual(weightValues(plain.generator));
  });

  it('the generator step sees the discriminator after k optimizer updates on the step batch', async () => {
    const lr = 0.05;
    let before: { d: number[][]; g: tf.Tensor[]; rng: ReturnType<Rng['getState']>; real?: tf.Tensor } | undefined;
    let seenByGenerator: number[][] | undefined;
    const spy = definePlugin({
      name: 'spy',
      hooks: {
        lossTerms: (ctx: LossContext) => {
          if (ctx.phase === 'D' && before === undefined) return;
          if (ctx.phase === 'G') seenByGenerator = weightValues(ctx.discriminator);
        },
        beforePhase: {
          phase: 'G',
          handler: (ctx) => {
            const t = ctx.trainer;
            before = { d: weightValues(t.discriminator), g: t.generator.getWeights().map((w) => tf.clone(w)), rng: t.rngFor('unrolled').getState() };
          },
        },
      },
    });
    let real: tf.Tensor | undefined;
    const grab = definePlugin({ name: 'grab', hooks: { lossTerms: { phase: 'D', handler: (ctx) => void (real ??= tf.keep(tf.clone(ctx.real))) } } });
    const trainer: Trainer = tinyTrainer([grab, spy, unrolled({ steps: 1 })], {
      steps: 1,
      optimizers: { discriminator: tf.train.sgd(lr), generator: tf.train.sgd(lr) },
    });
    await trainer.train();
    // Independent reference: one SGD step of a copy of D on (real, G(z)) with the z the lookahead drew (from its stream).
    const rng = new Rng(before!.rng.seed);
    rng.setState(before!.rng);
    const z = trainer.sampleLatent(real!.shape[0], rng);
    const gCopy = withSeed(1, () => tinyTrainer([]).generator);
    gCopy.setWeights(before!.g);
    const fake = gCopy.apply(z, { training: true }) as tf.Tensor;
    const dCopy = withSeed(2, () => tinyTrainer([]).discriminator);
    dCopy.setWeights(before!.d.map((w, i) => tf.tensor(w, trainer.discriminator.weights[i].shape as number[])));
    tf.train.sgd(lr).minimize(
      () => nonSaturating().discriminatorLoss(dCopy.apply(real!) as tf.Tensor, dCopy.apply(fake) as tf.Tensor),
      false,
      dCopy.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const expected = weightValues(dCopy);
    seenByGenerator!.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 6)));
    expect(seenByGenerator).not.toEqual(before!.d);
    expect(weightValues(trainer.discriminator)).toEqual(before!.d);
  });

  it("draws the lookahead's latents from its own stream: the core's stream advances as without unrolling", async () => {
    const t = tinyTrainer([unrolled({ steps: 3 })], { steps: 4 });
    await t.train();
    // Core: one latent draw per phase, 4 steps × (1 D + 1 G); unrolled: 3 lookahead updates per step.
    expect(t.rng.getState().counter).toBe(8);
    expect(t.rngFor('unrolled').getState().counter).toBe(12);
  });

  it('keeps memory flat across steps', async () => {
    expectFlatTensorCount(await trainCountingTensors(tinyTrainer([unrolled({ steps: 2 })], { steps: 5 })));
  });

  it('validates options', () => {
    expect(() => unrolled({ steps: 0 })).toThrow(/steps/);
    expect(() => unrolled({ mode: 'second' as never })).toThrow(/mode/);
    expect(() => unrolled({ learningRate: 0.1 })).toThrow(/applies to mode "full"/);
    expect(() => unrolled({ k: 3 } as never)).toThrow(/Unknown option "k"/);
  });
});

describe('unrolled full', () => {
  const smoothNet = (inputs: number, hidden: number, out: number, seed: number) =>
    withSeed(seed, () =>
      tfl.sequential({
        layers: [
          tfl.layers.dense({ units: hidden, activation: 'tanh', inputShape: [inputs] }),
          tfl.layers.dense({ units: out }),
        ],
      }),
    );

  /** The generator's loss as the trainer computes it in the generator phase: the plugin's generatorLoss replacement. */
  function generatorObjective(plugin: ReturnType<typeof unrolled>, G: tfl.LayersModel, D: tfl.LayersModel, z: tf.Tensor, real: tf.Tensor) {
    const loss = nonSaturating();
    const replace = hookHandler<(l: tf.Scalar, c: LossContext) => tf.Scalar>(plugin, 'generatorLoss');
    const { ctx } = lossContext({ discriminator: D, real, fake: G.apply(z) as tf.Tensor, phase: 'G', loss });
    return replace(loss.generatorLoss(ctx.fakeLogits), ctx);
  }

  async function prepared(steps: number, lr: number) {
    const G = smoothNet(3, 6, 2, 11);
    const D = smoothNet(2, 6, 1, 12);
    const z = tf.randomNormal([8, 3], 0, 1, 'float32', 21);
    const real = tf.randomNormal([8, 2], 0.5, 0.3, 'float32', 22);
    const plugin = unrolled({ steps, mode: 'full', learningRate: lr });
    const trainer = { discriminator: D, loss: nonSaturating(), optimizers: { discriminator: tf.train.sgd(lr) } };
    await (plugin.hooks!.setup as (t: unknown) => void)(trainer);
    await (plugin.hooks!.beforePhase as { handler: (c: unknown) => Promise<void> }).handler({ trainer });
    return { G, D, z, real, plugin };
  }

  it('the objective is the generator loss against k SGD lookahead steps of D on the same batch', async () => {
    const lr = 0.5;
    const { G, D, z, real, plugin } = await prepared(2, lr);
    const objective = generatorObjective(plugin, G, D, z, real);
    // Reference: a copy of D trained 2 SGD steps with tfjs's own optimizer on (real, G(z)).
    const fake = G.apply(z) as tf.Tensor;
    const dCopy = smoothNet(2, 6, 1, 12);
    const sgd = tf.train.sgd(lr);
    for (let j = 0; j < 2; j++) {
      sgd.minimize(() => nonSaturating().discriminatorLoss(dCopy.apply(real) as tf.Tensor, dCopy.apply(fake) as tf.Tensor), false, dCopy.trainableWeights.map((w) => w.read() as tf.Variable));
    }
    const expected = nonSaturating().generatorLoss(dCopy.apply(fake) as tf.Tensor);
    expect(objective.dataSync()[0]).toBeCloseTo(expected.dataSync()[0], 5);
    // D itself did not move.
    expect(weightValues(D)).toEqual(weightValues(smoothNet(2, 6, 1, 12)));
  });

  it('with an Adam discriminator the objective follows k steps of tfjs Adam, moments and step count included', async () => {
    const G = smoothNet(3, 6, 2, 11);
    const D = smoothNet(2, 6, 1, 12);
    const dCopy = smoothNet(2, 6, 1, 12);
    const z = tf.randomNormal([8, 3], 0, 1, 'float32', 21);
    const real = tf.randomNormal([8, 2], 0.5, 0.3, 'float32', 22);
    const fake = G.apply(z) as tf.Tensor;
    const dLoss = (net: tfl.LayersModel) => () => nonSaturating().discriminatorLoss(net.apply(real) as tf.Tensor, net.apply(fake) as tf.Tensor);
    const adam = tf.train.adam(0.05, 0.5, 0.9);
    const reference = tf.train.adam(0.05, 0.5, 0.9);
    // Two updates of history on both, so the lookahead starts from non-zero moments at step 3.
    for (let i = 0; i < 2; i++) {
      adam.minimize(dLoss(D), false, D.trainableWeights.map((w) => w.read() as tf.Variable));
      reference.minimize(dLoss(dCopy), false, dCopy.trainableWeights.map((w) => w.read() as tf.Variable));
    }
    const plugin = unrolled({ steps: 3, mode: 'full' });
    const trainer = { discriminator: D, loss: nonSaturating(), optimizers: { discriminator: adam } };
    await (plugin.hooks!.setup as (t: unknown) => void)(trainer);
    await (plugin.hooks!.beforePhase as { handler: (c: unknown) => Promise<void> }).handler({ trainer });
    const objective = generatorObjective(plugin, G, D, z, real).dataSync()[0];
    for (let j = 0; j < 3; j++) reference.minimize(dLoss(dCopy), false, dCopy.trainableWeights.map((w) => w.read() as tf.Variable));
    const expected = nonSaturating().generatorLoss(dCopy.apply(fake) as tf.Tensor).dataSync()[0];
    const before = nonSaturating().generatorLoss(D.apply(fake) as tf.Tensor).dataSync()[0];
    expect(objective).toBeCloseTo(expected, 5);
    expect(Math.abs(objective - before)).toBeGreaterThan(1e-3);
  });

  it('its generator gradient matches finite differences and differs from the first-order gradient', async () => {
    const lr = 0.5;
    const { G, D, z, real, plugin } = await prepared(3, lr);
    const vars = G.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => generatorObjective(plugin, G, D, z, real), vars);
    const kernel = vars[0];
    const analytic = values(grads[kernel.name]);
    // First-order reference: same lookahead weights, but held constant.
    const fake0 = G.apply(z) as tf.Tensor;
    const dCopy = smoothNet(2, 6, 1, 12);
    const sgd = tf.train.sgd(lr);
    for (let j = 0; j < 3; j++) {
      sgd.minimize(() => nonSaturating().discriminatorLoss(dCopy.apply(real) as tf.Tensor, dCopy.apply(fake0) as tf.Tensor), false, dCopy.trainableWeights.map((w) => w.read() as tf.Variable));
    }
    const firstOrder = tf.variableGrads(() => nonSaturating().generatorLoss(dCopy.apply(G.apply(z) as tf.Tensor) as tf.Tensor), vars);
    const firstOrderKernel = values(firstOrder.grads[kernel.name]);

    const eps = 1e-2;
    const base = values(kernel);
    let maxDiffFromFirstOrder = 0;
    for (const idx of [0, 4, 7, 13]) {
      const at = (delta: number) => {
        const shifted = base.slice();
        shifted[idx] += delta;
        kernel.assign(tf.tensor(shifted, kernel.shape));
        return tf.tidy(() => generatorObjective(plugin, G, D, z, real).dataSync()[0]);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      kernel.assign(tf.tensor(base, kernel.shape));
      expect(analytic[idx]).toBeCloseTo(numeric, 3);
      maxDiffFromFirstOrder = Math.max(maxDiffFromFirstOrder, Math.abs(analytic[idx] - firstOrderKernel[idx]));
    }
    // The second-order term is real: full unrolling is not first-order unrolling in disguise.
    expect(maxDiffFromFirstOrder).toBeGreaterThan(1e-3);
  });

  it("uses the loss's closed-form output gradient: objective and generator gradient equal tf.grads's bit for bit", async () => {
    // With Adam (the bias corrections computed before the tape) and with tf.grads of the loss (no closed form).
    const run = async (loss: ReturnType<typeof nonSaturating>) => {
      const G = smoothNet(3, 6, 2, 11);
      const D = smoothNet(2, 6, 1, 12);
      const z = tf.randomNormal([8, 3], 0, 1, 'float32', 21);
      const real = tf.randomNormal([8, 2], 0.5, 0.3, 'float32', 22);
      const adam = tf.train.adam(0.05, 0.5, 0.9);
      adam.minimize(() => loss.discriminatorLoss(D.apply(real) as tf.Tensor, D.apply(G.apply(z) as tf.Tensor) as tf.Tensor), false, D.trainableWeights.map((w) => w.read() as tf.Variable));
      const plugin = unrolled({ steps: 3, mode: 'full' });
      const trainer = { discriminator: D, loss, optimizers: { discriminator: adam } };
      await (plugin.hooks!.setup as (t: unknown) => void)(trainer);
      await (plugin.hooks!.beforePhase as { handler: (c: unknown) => Promise<void> }).handler({ trainer });
      const replace = hookHandler<(l: tf.Scalar, c: LossContext) => tf.Scalar>(plugin, 'generatorLoss');
      const vars = G.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => {
        const { ctx } = lossContext({ discriminator: D, real, fake: G.apply(z) as tf.Tensor, phase: 'G', loss });
        return replace(loss.generatorLoss(ctx.fakeLogits), ctx);
      }, vars);
      (plugin.hooks!.teardown as () => void)();
      return [values(value), ...vars.map((v) => values(grads[v.name]))];
    };
    const closedForm = await run(nonSaturating());
    const taped = await run({ ...nonSaturating(), discriminatorLossGradient: undefined });
    expect(closedForm).toEqual(taped);
    expect(Math.max(...closedForm[1].map(Math.abs))).toBeGreaterThan(1e-4);
  });

  it('trains with Adam on the ring-style networks with flat memory and D untouched by the lookahead', async () => {
    const trainer = tinyTrainer([unrolled({ steps: 2, mode: 'full' })], { steps: 5 });
    const terms: number[] = [];
    trainer.on('step:end', (e) => void terms.push(e.scalars['G/unrolled']));
    expectFlatTensorCount(await trainCountingTensors(trainer));
    expect(terms.every(Number.isFinite)).toBe(true);
    expect(terms.some((t) => t !== 0)).toBe(true);
  });

  describe('member models (stackMembers)', () => {
    async function preparedMembers(G: tfl.LayersModel, D: tfl.LayersModel, lr: number) {
      const plugin = unrolled({ steps: 3, mode: 'full', learningRate: lr });
      const trainer = { discriminator: D, loss: nonSaturating(), optimizers: { discriminator: tf.train.sgd(lr) } };
      await (plugin.hooks!.setup as (t: unknown) => void)(trainer);
      await (plugin.hooks!.beforePhase as { handler: (c: unknown) => Promise<void> }).handler({ trainer });
      return plugin;
    }
    const z = () => tf.randomNormal([16, 3], 0, 1, 'float32', 21);
    const real = () => tf.randomNormal([16, 2], 0.5, 0.3, 'float32', 22);

    it('the objective is the mean of the members’ own objectives (each lookahead at lr/S), and its gradient matches finite differences', async () => {
      const lr = 0.5;
      const G = stackMembers([smoothNet(3, 6, 2, 11), smoothNet(3, 6, 2, 13)]);
      const D = stackMembers([smoothNet(2, 6, 1, 12), smoothNet(2, 6, 1, 14)]);
      const plugin = await preparedMembers(G, D, lr);
      const objective = () => generatorObjective(plugin, G, D, z(), real());
      // Each member alone, on its rows: the mean over 2n rows scales its gradients by 1/2, so SGD at lr/2.
      let expected = 0;
      for (const [m, [g, d]] of [[11, 12], [13, 14]].entries()) {
        const alone = await preparedMembers(smoothNet(3, 6, 2, g), smoothNet(2, 6, 1, d), lr / 2);
        expected += generatorObjective(alone, smoothNet(3, 6, 2, g), smoothNet(2, 6, 1, d), memberRows(z(), 2, m), memberRows(real(), 2, m)).dataSync()[0] / 2;
      }
      expect(objective().dataSync()[0]).toBeCloseTo(expected, 5);

      const kernel = G.trainableWeights[0].read() as tf.Variable;
      const { grads } = tf.variableGrads(objective, [kernel]);
      const analytic = values(grads[kernel.name]);
      const base = values(kernel);
      const eps = 1e-2;
      // Entries of both members' kernels ([2, 3, 6]: 18 each).
      for (const idx of [0, 7, 18, 29]) {
        const at = (delta: number) => {
          const shifted = base.slice();
          shifted[idx] += delta;
          kernel.assign(tf.tensor(shifted, kernel.shape));
          return tf.tidy(() => objective().dataSync()[0]);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        kernel.assign(tf.tensor(base, kernel.shape));
        expect(Math.abs(numeric)).toBeGreaterThan(1e-4);
        expect(analytic[idx]).toBeCloseTo(numeric, 3);
      }
    });

    it('a member trained with full unrolling among others equals the same networks trained alone, to float rounding', async () => {
      const train = async (seeds: number[]) => {
        const trainer = memberTrainer(
          seeds.map((s) => ({ generator: smoothNet(4, 8, 2, s), discriminator: smoothNet(2, 8, 1, s + 100) })),
          { perMember: 16, latentDim: 4, plugins: [unrolled({ steps: 3, mode: 'full' })] },
        );
        await trainer.train();
        return [...memberWeights(trainer.generator, seeds.length, 0), ...memberWeights(trainer.discriminator, seeds.length, 0)];
      };
      // Member 0 of a run has the trainer's first rows of data and latents, which a run alone with its seed draws.
      const together = await train([31, 32, 33]);
      const alone = await train([31]);
      const start = [...weightValues(smoothNet(4, 8, 2, 31)), ...weightValues(smoothNet(2, 8, 1, 131))];
      together.forEach((w, i) => {
        expect(Math.max(...w.map((v, k) => Math.abs(v - start[i][k])))).toBeGreaterThan(1e-3);
        w.forEach((v, k) => expect(v).toBeCloseTo(alone[i][k], 5));
      });
    });
  });

  it('says which discriminators it cannot unroll', async () => {
    const D = withSeed(2, () =>
      tfl.sequential({ layers: [tfl.layers.dense({ units: 4, inputShape: [2] }), tfl.layers.batchNormalization({ name: 'bn' }), tfl.layers.dense({ units: 1 })] }),
    );
    const trainer = tinyTrainer([unrolled({ mode: 'full' })], { discriminator: D });
    await expect(trainer.train()).rejects.toThrow(/"bn" is BatchNormalization/);
  });
});
