/**
 * `@gantry/core/testing`: what a plugin's tests need, for the packages in this repository and for plugin authors
 * outside it. A tiny seeded GAN and data sources that are pure functions of (seed, batch index), a trainer builder, a
 * LossContext builder for calling a plugin's `lossTerms` directly, a tensor-leak assertion and a checkpoint save/load
 * round trip. Runs on whatever backend is active; `useCpuBackend()` picks tfjs's CPU backend (import
 * `@tensorflow/tfjs-backend-cpu` first, it registers that backend).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
// By name, not by path: the built testing entry then shares the package's one copy of Trainer, errors and the RNG.
import {
  GantryError,
  Rng,
  Trainer,
  memberEpsilon,
  registerNestedGradientFixes,
  stackMemberPairs,
  unpackScheduled,
  withSeed,
  type Batch,
  type DataSource,
  type GanLoss,
  type GantryPlugin,
  type HookName,
  type LossContext,
  type Phase,
  type TrainerOptions,
} from '@gantry/core';

/** Makes tfjs's CPU backend active, in production mode, with the nested-gradient fixes registered. */
export async function useCpuBackend(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) {
    throw new GantryError('useCpuBackend: no cpu backend registered; import "@tensorflow/tfjs-backend-cpu" first');
  }
  tf.enableProdMode();
  registerNestedGradientFixes();
}

/** A seeded Dense → LeakyReLU(0.2) → Dense network; `first` layers go in front (e.g. a noise layer). */
export function mlp(inputDim: number, hidden: number, output: number, seed: number, first: tfl.layers.Layer[] = []): tfl.Sequential {
  return withSeed(seed, () => {
    const model = tfl.sequential();
    for (const layer of first) model.add(layer);
    model.add(tfl.layers.dense({ units: hidden, inputShape: first.length ? undefined : [inputDim], name: `h_${seed}` }));
    model.add(tfl.layers.leakyReLU({ alpha: 0.2 }));
    model.add(tfl.layers.dense({ units: output }));
    return model;
  });
}

/** A tiny GAN on `dim`-D points: G = dense(latent → 8, relu) → dense(dim, tanh); D = dense(8) → leaky ReLU → dense(1). */
export function tinyModels(seed = 1, latent = 4, dim = 2): { generator: tfl.Sequential; discriminator: tfl.Sequential } {
  return withSeed(seed, () => {
    const generator = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [latent], units: 8, activation: 'relu' }),
        tfl.layers.dense({ units: dim, activation: 'tanh' }),
      ],
    });
    const discriminator = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [dim], units: 8 }), tfl.layers.leakyReLU({ alpha: 0.2 }), tfl.layers.dense({ units: 1 })],
    });
    return { generator, discriminator };
  });
}

/** Endless `dim`-D points uniform in [-0.5, 0.5]^dim, a pure function of (seed, batch index). */
export function pointSource(dim = 2): DataSource {
  return {
    name: 'points',
    elementShape: [dim],
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (let i = start; ; i++) {
        yield { x: tf.tidy(() => tf.mul(tf.randomUniform([batchSize, dim], -1, 1, 'float32', seed + i * 7919), 0.5)) };
      }
    },
  };
}

/** Endless 2-D Gaussian blobs (mean 0.3, sd 0.2) clipped to [-1, 1], a pure function of (seed, batch index). */
export function blobSource(dim = 2): DataSource {
  return {
    name: 'blobs',
    elementShape: [dim],
    *batches({ batchSize, seed, start }) {
      for (let i = start; ; i++) {
        yield { x: tf.tidy(() => tf.clipByValue(tf.randomNormal([batchSize, dim], 0.3, 0.2, 'float32', seed + i), -1, 1)) };
      }
    },
  };
}

/** Tiny GAN on side × side × 1 images: G = dense(latent → side², tanh) reshaped, D = flatten → dense(8, relu) → dense(1). */
export function tinyImageModels(seed = 1, latent = 4, side = 4): { generator: tfl.Sequential; discriminator: tfl.Sequential } {
  return withSeed(seed, () => {
    const generator = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [latent], units: side * side, activation: 'tanh' }),
        tfl.layers.reshape({ targetShape: [side, side, 1] }),
      ],
    });
    const discriminator = tfl.sequential({
      layers: [tfl.layers.flatten({ inputShape: [side, side, 1] }), tfl.layers.dense({ units: 8, activation: 'relu' }), tfl.layers.dense({ units: 1 })],
    });
    return { generator, discriminator };
  });
}

export interface ImageSourceOptions {
  /** Height and width. Default 4. */
  side?: number;
  /** Default 1. */
  channels?: number;
  /** Labels k mod numClasses for the k-th example of each batch (conditional models); none by default. */
  numClasses?: number;
}

/** Endless side × side × channels images uniform in [-1, 1], a pure function of (seed, batch index). */
export function imageSource({ side = 4, channels = 1, numClasses }: ImageSourceOptions = {}): DataSource {
  return {
    name: `images-${side}`,
    elementShape: [side, side, channels],
    numClasses,
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (let i = start; ; i++) {
        const x = tf.randomUniform([batchSize, side, side, channels], -1, 1, 'float32', seed + i * 7919);
        const labels = numClasses ? tf.tensor1d(Array.from({ length: batchSize }, (_, k) => k % numClasses), 'int32') : undefined;
        yield { x, labels };
      }
    },
  };
}

/** A linear critic D(x) = w·flatten(x) + b with the given w (‖∇ₓD‖ = ‖w‖ everywhere: closed forms for penalties). */
export function linearCritic(inputShape: number[], w: number[], b = 0.3): tfl.LayersModel {
  const layers: tfl.layers.Layer[] = [];
  if (inputShape.length > 1) layers.push(tfl.layers.flatten({ inputShape }));
  layers.push(tfl.layers.dense({ units: 1, ...(inputShape.length > 1 ? {} : { inputShape }) }));
  const model = tfl.sequential({ layers });
  model.layers.at(-1)!.setWeights([tf.tensor2d(w, [w.length, 1]), tf.tensor1d([b])]);
  return model;
}

/** The tiny GAN (`tinyModels`) on `pointSource` with fixed seeds: 6 steps of batch 16, seed 7, unless `extra` says otherwise. */
export function pointTrainer(extra: Partial<TrainerOptions> = {}, seed = 1): Trainer {
  return new Trainer({ ...tinyModels(seed), data: pointSource(), steps: 6, batchSize: 16, seed: 7, ...extra });
}

/** Trains to the end and returns [d_loss, g_loss] of every step. */
export async function lossTrace(trainer: Trainer): Promise<number[][]> {
  const trace: number[][] = [];
  const off = trainer.on('step:end', ({ scalars }) => void trace.push([scalars.d_loss, scalars.g_loss]));
  try {
    await trainer.train();
  } finally {
    off();
  }
  return trace;
}

/** A Trainer of two seeded MLPs (latent 3 → 2-D points, critic 2 → 1) on blobs: 4 steps of batch 8, seed 7. */
export function tinyTrainer(plugins: GantryPlugin[], options: Partial<TrainerOptions> = {}): Trainer {
  return new Trainer({
    generator: mlp(3, 8, 2, 1),
    discriminator: mlp(2, 8, 1, 2),
    data: blobSource(),
    steps: 4,
    batchSize: 8,
    seed: 7,
    plugins,
    ...options,
  });
}

/** A plugin's handler for `hook` (schedule and order stripped), to call it directly. */
export function hookHandler<F = (...args: any[]) => any>(plugin: GantryPlugin, hook: HookName): F {
  const value = plugin.hooks?.[hook];
  if (!value) throw new GantryError(`plugin "${plugin.name}" has no hook "${hook}"`);
  return unpackScheduled(value as never).handler as F;
}

export interface LossContextOptions {
  discriminator: tfl.LayersModel;
  real: tf.Tensor;
  fake: tf.Tensor;
  labels?: tf.Tensor;
  /** Class count for conditional critics (labels become one-hot rows). */
  numClasses?: number;
  seed?: number;
  step?: number;
  phase?: Phase;
  plugin?: string;
  /** The GAN loss a hook reads as `ctx.trainer.loss` (the rest of `ctx.trainer` is absent). */
  loss?: GanLoss;
}

/**
 * A LossContext as the Trainer builds it in a phase, for calling a plugin's `lossTerms` or `generatorLoss` directly:
 * `fakeLogits` = D(fake), and in the D phase `realLogits` = D(real). `reports` collects what the plugin reported (read
 * at once, so the plugin may dispose its tensors).
 */
export function lossContext(options: LossContextOptions): { ctx: LossContext; reports: Record<string, number> } {
  const reports: Record<string, number> = {};
  const { discriminator, real, fake, labels, numClasses } = options;
  const discriminate = (x: tf.Tensor, l?: tf.Tensor) =>
    discriminator.apply(l ? [x, tf.cast(tf.oneHot(tf.cast(l, 'int32'), numClasses!), 'float32')] : x, { training: true }) as tf.Tensor;
  const ctx = {
    trainer: (options.loss ? { loss: options.loss } : undefined) as never,
    plugin: options.plugin ?? 'test',
    step: options.step ?? 1,
    phase: options.phase ?? 'D',
    criticIndex: 0,
    rng: new Rng(options.seed ?? 0),
    report: (name: string, value: tf.Scalar) => {
      reports[name] = value.dataSync()[0];
    },
    real,
    fake,
    labels,
    fakeLogits: discriminate(fake, labels),
    realLogits: (options.phase ?? 'D') === 'D' ? discriminate(real, labels) : undefined,
    discriminate,
    generator: undefined as never,
    discriminator,
  } as LossContext;
  return { ctx, reports };
}

/** Trains `trainer` and returns `tf.memory().numTensors` after each step. */
export async function trainCountingTensors(trainer: Trainer): Promise<number[]> {
  const counts: number[] = [];
  const off = trainer.on('step:end', () => void counts.push(tf.memory().numTensors));
  try {
    await trainer.train();
  } finally {
    off();
  }
  return counts;
}

/**
 * Throws unless the tensor count stays the same after the first `warmup` entries (optimizer slots and other lazily
 * built state come first); the message lists every count.
 */
export function expectFlatTensorCount(counts: number[], warmup = 2): void {
  const tail = counts.slice(warmup);
  if (tail.length < 2) throw new Error(`need at least ${warmup + 2} counts to check for leaks, got ${counts.length}`);
  if (new Set(tail).size !== 1) throw new Error(`tensor count grows: ${counts.join(', ')}`);
}

/**
 * Writes a checkpoint of `trainer` into a temporary folder, restores it into `fresh()` (built the same way) and returns
 * the restored trainer; the folder is removed afterwards. For plugins with state: the restored plugin must carry on
 * exactly where the saved one was.
 */
export async function saveLoadRoundTrip(trainer: Trainer, fresh: () => Trainer): Promise<Trainer> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-roundtrip-'));
  try {
    await trainer.saveCheckpoint(dir);
    const restored = fresh();
    await restored.restore(dir);
    return restored;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A tensor's values as a plain array. */
export const values = (t: tf.Tensor): number[] => Array.from(t.dataSync());
/** Every weight of a model as plain arrays. */
export const weightValues = (model: tfl.LayersModel): number[][] => model.getWeights().map(values);

/**
 * A trainer of `pairs` as members of one model (`stackMemberPairs`: a single pair is used as it is, and the stacked
 * pairs are disposed): `perMember` rows each of `pointSource()`, Adam 0.01 β1 0.5 with `memberEpsilon`, seed 7.
 */
export function memberTrainer(
  pairs: { generator: tfl.LayersModel; discriminator: tfl.LayersModel }[],
  options: { perMember: number; latentDim: number; steps?: number; plugins?: GantryPlugin[] },
): Trainer {
  const members = pairs.length;
  const { generator, discriminator } = stackMemberPairs(pairs);
  const adam = () => tf.train.adam(0.01, 0.5, 0.999, memberEpsilon(1e-8, members));
  return new Trainer({
    generator,
    discriminator,
    data: pointSource(),
    steps: options.steps ?? 4,
    batchSize: members * options.perMember,
    latentDim: options.latentDim,
    seed: 7,
    optimizers: { generator: adam(), discriminator: adam() },
    plugins: options.plugins ?? [],
  });
}

/** Member m's slice of each of a member model's trainable weights. */
export function memberWeights(model: tfl.LayersModel, members: number, member: number): number[][] {
  return model.trainableWeights.map((w) => {
    const v = values(w.read());
    const size = v.length / members;
    return v.slice(member * size, (member + 1) * size);
  });
}
