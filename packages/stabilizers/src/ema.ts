import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type Trainer } from '@gantry/core';

export interface EmaOptions {
  /** Decay: ema ← β·ema + (1 − β)·w after every generator update. Default 0.999 (ProGAN, StyleGAN use similar). */
  beta?: number;
  /**
   * StyleGAN2's EMA ramp-up: the average's half-life is at most `rampup` × the generator updates so far, so early
   * samples are not dominated by the random initial weights. Update n (counting from 0) uses
   * βₙ = min(β, 0.5^(1 / (rampup·n))), which is 0 at n = 0 (the copy takes the weights). Default: none (β throughout).
   */
  rampup?: number;
}

/** A structural copy of a model with fresh weights (custom layers must be registered with tf.serialization). */
export async function cloneModel(model: LayersModel): Promise<LayersModel> {
  const topology = model.toJSON(null, false) as unknown as tf.io.ModelJSON['modelTopology'];
  return tfl.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
}

export interface EmaPlugin extends GantryPlugin {
  /** The averaged generator (also `trainer.samplingGenerator` while training); undefined before setup. */
  readonly model: LayersModel | undefined;
  /** Number of averaging updates so far. */
  readonly updates: number;
}

/**
 * Exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et al. 2019). After each
 * generator update, every trainable weight of an averaged copy moves as ema ← β·ema + (1 − β)·w; non-trainable
 * weights (batch-norm statistics, fade-in α) are copied. The copy starts equal to the generator, so after n updates
 * ema = βⁿ·w₀ + (1 − β)·Σₖ βⁿ⁻ᵏ·wₖ (no bias correction). `trainer.samplingGenerator` points at the copy, so samples
 * and evaluation use it. When the generator is replaced (progressive growing), weights shared with the old one keep
 * their averages and new ones start from their current values. The averages are checkpointed.
 */
export function ema(options: EmaOptions = {}): EmaPlugin {
  checkOptions('ema', options, ['beta', 'rampup']);
  const beta = options.beta ?? 0.999;
  if (!(beta >= 0 && beta < 1)) throw new GantryError(`ema beta must be in [0, 1), got ${beta}`);
  const rampup = options.rampup;
  if (rampup !== undefined && !(rampup > 0)) throw new GantryError(`ema rampup must be > 0, got ${rampup}`);

  let tracked: LayersModel | undefined;
  let shadow: LayersModel | undefined;
  let pending: tf.Tensor[] | undefined;
  let updates = 0;

  /** Makes `shadow` an averaged copy of the trainer's current generator. */
  async function track(trainer: Trainer): Promise<void> {
    const generator = trainer.generator;
    if (generator === tracked && shadow) {
      if (trainer.samplingGenerator !== shadow) trainer.samplingGenerator = shadow;
      return;
    }
    const copy = await cloneModel(generator);
    const previous = new Map<LayerVariable, LayerVariable>();
    if (tracked && shadow) tracked.weights.forEach((w, i) => previous.set(w, shadow!.weights[i]));
    if (pending) {
      if (pending.length !== generator.weights.length) {
        throw new GantryError(`ema: the checkpoint holds ${pending.length} averaged weights but the generator has ${generator.weights.length}`);
      }
      generator.weights.forEach((w, i) => {
        if (w.shape.join() !== pending![i].shape.join()) {
          throw new GantryError(`ema: checkpointed weight ${i} has shape [${pending![i].shape}] but ${w.name} has [${w.shape}]`);
        }
      });
    }
    tf.tidy(() => {
      copy.weights.forEach((w, i) => {
        const source = pending?.[i] ?? previous.get(generator.weights[i])?.read() ?? generator.weights[i].read();
        w.write(source);
      });
    });
    if (pending) tf.dispose(pending);
    pending = undefined;
    const old = shadow;
    tracked = generator;
    shadow = copy;
    trainer.samplingGenerator = copy;
    old?.dispose();
  }

  return definePlugin({
    name: 'ema',
    get model() {
      return shadow;
    },
    get updates() {
      return updates;
    },
    hooks: {
      setup: (trainer) => track(trainer),
      // After beforeStep, where plugins such as progressive growing swap the generator.
      beforePhase: { phase: 'G', handler: (ctx) => track(ctx.trainer) },
      afterApply: {
        phase: 'G',
        // After every other plugin's afterApply: the average takes the generator's final weights of the step.
        order: 'post',
        handler: (ctx) => {
          const generator = ctx.trainer.generator;
          if (generator !== tracked || !shadow) throw new GantryError('ema: the generator changed after the generator phase began');
          const averaged = shadow;
          const b = betaAt(beta, rampup, updates);
          tf.tidy(() => {
            generator.weights.forEach((w, i) => {
              const s = averaged.weights[i];
              s.write(w.trainable ? tf.add(tf.mul(s.read(), b), tf.mul(w.read(), 1 - b)) : w.read());
            });
          });
          updates += 1;
        },
      },
    },
    state: {
      // Copies: what save() returns belongs to the core, which disposes it once written.
      save: () => ({
        json: { beta, rampup, updates, weights: shadow?.weights.length ?? 0 },
        tensors: shadow ? Object.fromEntries(shadow.weights.map((w, i) => [`w${i}`, tf.clone(w.read())])) : {},
      }),
      load(snapshot) {
        const json = (snapshot.json ?? {}) as { updates?: number; weights?: number };
        const tensors = snapshot.tensors ?? {};
        updates = json.updates ?? 0;
        const count = json.weights ?? Object.keys(tensors).length;
        tf.dispose(pending);
        pending = Array.from({ length: count }, (_, i) => {
          const t = tensors[`w${i}`];
          if (!t) throw new GantryError(`ema: checkpoint is missing averaged weight w${i}`);
          return tf.clone(t);
        });
        // A loaded state replaces the running average at the next setup.
        tracked = undefined;
      },
    },
  });
}

/** The decay of averaging update `n` (from 0): β, capped by the ramp-up's half-life of `rampup`·n updates. */
function betaAt(beta: number, rampup: number | undefined, n: number): number {
  if (rampup === undefined) return beta;
  return n === 0 ? 0 : Math.min(beta, 0.5 ** (1 / (rampup * n)));
}
