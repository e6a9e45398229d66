import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type Batch, type GantryPlugin, type Trainer } from '@gantry/core';
import { downsample, fadeReal, padImages } from './images.js';
import type { ProgressiveGan } from './models.js';
import { growthAt, resolveSchedule, scheduleLength, type GrowthPhase, type GrowthSchedule } from './schedule.js';

export interface ProgressiveOptions extends GrowthSchedule {
  /** Pad real images to this size first (MNIST: 28 → 32), with `padValue`. */
  padTo?: number;
  /** Value of the padding; -1 is black for data in [-1, 1]. Default -1. */
  padValue?: number;
}

export interface ProgressivePlugin extends GantryPlugin {
  readonly gan: ProgressiveGan;
  /** Growth phase of a (1-based) step. */
  phaseAt(step: number): GrowthPhase;
  /** The models trained in `step` (use `modelsForStep(1)` to build the Trainer; the checkpoint's step to resume). */
  modelsForStep(step: number): { generator: LayersModel; discriminator: LayersModel };
  /** Steps until the last stage has trained its stableSteps. */
  readonly totalSteps: number;
}

/**
 * Resets an optimizer's state in place (step count and moments), as ProGAN does when the network changes
 * (`reset_opt_for_new_lod`). tfjs optimizers keep moments by the position of each gradient, so they must not be
 * carried over to a model whose list of weights differs.
 */
export async function resetOptimizer(optimizer: tf.Optimizer): Promise<void> {
  const state = await optimizer.getWeights();
  const zero = tf.scalar(0, 'int32');
  try {
    await optimizer.setWeights([{ name: state[0]?.name ?? 'iter', tensor: zero }]);
  } catch (error) {
    throw new GantryError(`progressive: cannot reset ${optimizer.getClassName()} state when the models grow (${(error as Error).message}); use Adam, SGD or RMSProp`);
  } finally {
    zero.dispose();
  }
  // The old moment variables are no longer referenced by the optimizer.
  tf.dispose(state.map((s) => s.tensor));
}

/**
 * Progressive growing (Karras et al. 2018). Before each step it puts the models of the step's stage into the
 * trainer (resetting both optimizers' state when they change) and sets the fade α; each discriminator phase's real
 * batch is padded, average-pooled to the stage's resolution and, during a fade, blended with its 2× coarser
 * version exactly as the generator's output is. Reports `progressive/resolution` and `progressive/alpha`. Its
 * checkpointed state holds the weights of every block (also those not yet in use).
 */
export function progressive(gan: ProgressiveGan, options: ProgressiveOptions): ProgressivePlugin {
  checkOptions('progressive', options, ['stableSteps', 'fadeSteps', 'batchSize', 'padTo', 'padValue']);
  const { padTo, padValue = -1, ...growth } = options;
  const schedule = resolveSchedule(growth, gan.stages);
  const final = gan.resolutions[gan.stages - 1];
  if (padTo !== undefined && padTo !== final) {
    throw new GantryError(`progressive padTo (${padTo}) must equal the final resolution ${final}`);
  }
  let phase: GrowthPhase | undefined;

  const modelsFor = (p: GrowthPhase) => ({
    generator: gan.generator(p.stage, p.fading),
    discriminator: gan.discriminator(p.stage, p.fading),
  });

  const enter = (trainer: Trainer, step: number) => apply(trainer, growthAt(schedule, step));

  async function apply(trainer: Trainer, next: GrowthPhase): Promise<void> {
    if (next.fading) gan.setAlpha(next.stage, next.alpha);
    const { generator, discriminator } = modelsFor(next);
    if (trainer.generator !== generator || trainer.discriminator !== discriminator) {
      trainer.setModels({ generator, discriminator });
      await resetOptimizer(trainer.optimizers.generator);
      await resetOptimizer(trainer.optimizers.discriminator);
    }
    phase = next;
  }

  function transform(batch: Batch): Batch {
    const p = phase!;
    const r = gan.resolutions[p.stage];
    const limit = schedule.batchSize?.[p.stage];
    const x = tf.tidy(() => {
      let images = batch.x as tf.Tensor4D;
      if (images.rank !== 4) throw new GantryError(`progressive expects NHWC image batches, got shape [${images.shape}]`);
      if (limit !== undefined && limit < images.shape[0]) images = tf.slice(images, 0, limit);
      if (padTo !== undefined && images.shape[1] !== padTo) images = padImages(images, padTo, padValue);
      if (images.shape[1] !== final) {
        throw new GantryError(`progressive: real images are ${images.shape[1]}×${images.shape[2]}, expected ${final}×${final} (set padTo)`);
      }
      const atStage = downsample(images, r);
      return p.fading ? fadeReal(atStage, p.alpha) : atStage;
    });
    const labels =
      batch.labels && limit !== undefined && limit < batch.labels.shape[0] ? tf.slice(batch.labels, 0, limit) : batch.labels;
    return { x, labels };
  }

  const plugin = definePlugin({
    name: 'progressive',
    gan,
    totalSteps: scheduleLength(schedule),
    phaseAt: (step: number) => growthAt(schedule, step),
    modelsForStep: (step: number) => {
      const p = growthAt(schedule, step);
      if (p.fading) gan.setAlpha(p.stage, p.alpha);
      return modelsFor(p);
    },
    hooks: {
      // The stage of the last completed step (step 1's on a fresh run): on resume that is the checkpoint's stage, so
      // plugins set up after this one (EMA) see the models they saved; beforeStep grows on schedule from there.
      setup: (trainer) => enter(trainer, Math.max(1, trainer.step)),
      beforeStep: async (ctx) => {
        await enter(ctx.trainer, ctx.step);
        const p = phase!;
        tf.tidy(() => {
          ctx.report('resolution', tf.scalar(gan.resolutions[p.stage]));
          ctx.report('alpha', tf.scalar(p.alpha));
        });
      },
      transformBatch: (batch) => transform(batch),
    },
    state: {
      save: () => {
        const weights = gan.allWeights();
        return {
          json: { ...(phase ?? {}), resolutions: gan.resolutions, weights: weights.length },
          tensors: Object.fromEntries(weights.map((w, i) => [`w${i}`, tf.clone(w.read())])),
        };
      },
      async load(snapshot, trainer?: Trainer) {
        const weights = gan.allWeights();
        const tensors = snapshot.tensors ?? {};
        weights.forEach((w, i) => {
          const t = tensors[`w${i}`];
          if (!t) throw new GantryError(`progressive: checkpoint lacks block weight w${i} (${w.name})`);
          if (t.shape.join() !== w.shape.join()) {
            throw new GantryError(`progressive: checkpointed weight w${i} has shape [${t.shape}] but ${w.name} has [${w.shape}]: build the ProgressiveGan with the same options`);
          }
        });
        // write() makes the variable share the tensor's data; the core disposes the snapshot afterwards.
        weights.forEach((w, i) => w.write(tensors[`w${i}`]));
        // A core that lets plugins load before model weights passes the trainer: swap to the checkpoint's stage now.
        const saved = snapshot.json as Partial<GrowthPhase> | undefined;
        if (trainer && saved?.stage !== undefined) {
          await apply(trainer, { stage: saved.stage, fading: saved.fading ?? false, alpha: saved.alpha ?? 1 });
        }
      },
    },
  });
  return plugin;
}
