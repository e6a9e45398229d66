import '@tensorflow/tfjs-backend-cpu';
/**
 * The three custom stabilizers of the README's guide (adaptiveNoise adds a `sigma` getter for the test), with tests
 * of their effect. Keep the two in sync.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { definePlugin, type GantryPlugin } from '@gantry/core';
import { instanceNoise, type InstanceNoise } from '../src/index.js';
import { expectFlatTensorCount, mlp, tinyTrainer, trainCountingTensors, useCpuBackend, values } from '@gantry/core/testing';

beforeAll(useCpuBackend);

// ---- README: 1. A loss term
/** ProGAN's drift penalty: ε·E[D(x)²] keeps the discriminator's output from drifting far from 0. */
export const driftPenalty = (epsilon = 1e-3) =>
  definePlugin({
    name: 'drift',
    hooks: {
      lossTerms: {
        phase: 'D',
        handler: ({ realLogits }) => tf.tidy(() => tf.mul(tf.mean(tf.square(realLogits!)), epsilon) as tf.Scalar),
      },
    },
  });

// ---- README: 2. A gradient transform with a schedule and seeded randomness
/** Gradient noise (Neelakantan et al. 2015): N(0, η/(1 + t)^γ) added to the generator's gradients. */
export const gradientNoise = ({ eta = 0.01, gamma = 0.55 } = {}) =>
  definePlugin({
    name: 'gradient-noise',
    hooks: {
      transformGrads: {
        phase: 'G',
        handler: (grads, { step, rng }) => {
          const std = Math.sqrt(eta / (1 + step) ** gamma);
          return tf.tidy(() =>
            Object.fromEntries(
              Object.entries(grads).map(([name, g]) => [name, tf.add(g, tf.randomNormal(g.shape, 0, std, 'float32', rng.nextSeed()))]),
            ),
          );
        },
      },
    },
  });

// ---- README: 3. State, reports and events: instance noise that adapts to the discriminator
/**
 * Adaptive instance noise, after the overfitting heuristic of StyleGAN2-ADA: r = E[sign(D(x_real))] is near 1 when
 * D is overconfident on real data. Every `interval` steps σ moves up if r > target and down otherwise. σ is the
 * plugin's state, so a resumed run continues with it.
 */
export function adaptiveNoise({ target = 0.6, interval = 4, stepSize = 0.01 } = {}): GantryPlugin & { layer: () => InstanceNoise } {
  const noise = instanceNoise({ sigma: 0, annealSteps: 1 }); // used for its layer only
  let sigma = 0;
  let sum = 0;
  let count = 0;
  const layers = new Set<InstanceNoise>();
  return definePlugin({
    name: 'adaptive-noise',
    layer: () => {
      const layer = noise.layer({ inputShape: [2] });
      layers.add(layer);
      return layer;
    },
    hooks: {
      beforeStep: ({ rng }) => {
        for (const layer of layers) {
          layer.sigma = sigma;
          layer.rng = rng;
        }
      },
      lossTerms: {
        phase: 'D',
        // Reported, not returned: it is a statistic, not a loss term. Read once per step with the other scalars.
        handler: ({ realLogits, report }) => tf.tidy(() => report('r', tf.mean(tf.sign(realLogits!)) as tf.Scalar)),
      },
    },
    on: {
      'step:end': ({ step, scalars }) => {
        sum += scalars['adaptive-noise/r'];
        count += 1;
        if (step % interval !== 0) return;
        sigma = Math.max(0, sigma + Math.sign(sum / count - target) * stepSize);
        sum = 0;
        count = 0;
      },
    },
    state: {
      save: () => ({ json: { sigma, sum, count } }),
      load: ({ json }) => void ({ sigma, sum, count } = json as { sigma: number; sum: number; count: number }),
    },
    get sigma() {
      return sigma;
    },
  });
}

describe('the guide examples', () => {
  it('drift penalty: the term is ε·mean(D(x)²)', async () => {
    const seen: number[] = [];
    const spy = definePlugin({
      name: 'spy',
      hooks: { lossTerms: { phase: 'D', handler: ({ realLogits }) => void seen.push(values(realLogits!).reduce((s, v) => s + v * v, 0) / realLogits!.size) } },
    });
    const trainer = tinyTrainer([driftPenalty(0.5), spy], { steps: 3 });
    const terms: number[] = [];
    trainer.on('step:end', (e) => void terms.push(e.scalars['D/drift']));
    await trainer.train();
    terms.forEach((t, i) => expect(t).toBeCloseTo(0.5 * seen[i], 5));
  });

  it('gradient noise: the applied G gradient differs from the clean one by N(0, η/(1+t)^γ) noise', async () => {
    const diffs: number[] = [];
    let clean: tf.NamedTensorMap = {};
    const before = definePlugin({ name: 'before', hooks: { transformGrads: { phase: 'G', handler: (g) => void (clean = Object.fromEntries(Object.entries(g).map(([k, v]) => [k, tf.keep(v.clone())]))) } } });
    const after = definePlugin({
      name: 'after',
      hooks: {
        transformGrads: {
          phase: 'G',
          handler: (g) => {
            for (const [k, v] of Object.entries(g)) diffs.push(...tf.tidy(() => values(tf.sub(v, clean[k]))));
            tf.dispose(Object.values(clean));
          },
        },
      },
    });
    const eta = 4;
    const trainer = tinyTrainer([before, gradientNoise({ eta, gamma: 0 }), after], { steps: 3 });
    expectFlatTensorCount(await trainCountingTensors(trainer), 1);
    const std = Math.sqrt(diffs.reduce((s, d) => s + d * d, 0) / diffs.length);
    expect(diffs.length).toBeGreaterThan(100);
    expect(std).toBeGreaterThan(0.85 * Math.sqrt(eta));
    expect(std).toBeLessThan(1.15 * Math.sqrt(eta));
  });

  it('adaptive noise: σ follows sign(mean r − target) every interval steps, and is checkpointed state', async () => {
    /** Trains 8 steps and replays the update rule on the r values the plugin reported. */
    const run = async (target: number) => {
      const plugin = adaptiveNoise({ target, interval: 2, stepSize: 0.05 });
      const trainer = tinyTrainer([plugin], { discriminator: mlp(2, 8, 1, 2, [plugin.layer()]), steps: 8 });
      const r: number[] = [];
      trainer.on('step:end', ({ scalars }) => void r.push(scalars['adaptive-noise/r']));
      await trainer.train();
      let expected = 0;
      for (let i = 1; i < r.length; i += 2) expected = Math.max(0, expected + Math.sign((r[i - 1] + r[i]) / 2 - target) * 0.05);
      return { plugin, trainer, r, sigma: (plugin as unknown as { sigma: number }).sigma, expected };
    };
    // r = E[sign(D(x))] lies in [−1, 1]: below −1 σ must rise every 2 steps, above 1 it must stay at 0.
    const rising = await run(-1.5);
    expect(rising.sigma).toBeCloseTo(0.2, 10);
    expect((await run(1.5)).sigma).toBe(0);
    // A target inside the range of r: σ is the rule replayed on the reported r (both directions possible).
    const mid = await run(rising.r.reduce((a, b) => a + b, 0) / rising.r.length);
    expect(mid.sigma).toBeCloseTo(mid.expected, 10);
    const saved = await rising.plugin.state!.save();
    const copy = adaptiveNoise();
    await copy.state!.load(saved, rising.trainer);
    expect((copy as unknown as { sigma: number }).sigma).toBeCloseTo(0.2, 10);
  });
});
