import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { CheckpointStore } from './checkpoint-store.js';
import type { DataInput } from './data.js';
import { GantryError, checkOptions } from './errors.js';
import { nonSaturating, type GanLoss } from './losses.js';
import type { GantryPlugin } from './plugin.js';
import { shapeOf } from './model-inputs.js';
import { NORMAL_GENERATORS, type NormalGenerator } from './normal.js';

export interface CheckpointOptions {
  /**
   * Where the `step-NNNNNN` checkpoints and the `latest` pointer go: a folder in Node, an IndexedDB prefix in a
   * browser, or any `CheckpointStore` (`fileCheckpoints(dir)`, `indexedDbCheckpoints(prefix)`).
   */
  dir: string | CheckpointStore;
  /** Write a checkpoint every N steps (and always at the end of a run). 0 = only at the end. */
  every?: number;
  /** How many checkpoints to keep; older ones are deleted. Default 3. */
  keep?: number;
}

export interface TrainerOptions {
  generator: LayersModel;
  discriminator: LayersModel;
  /** Real data: a DataSource (resumes exactly) or any (async) iterable of batches or tensors in [-1, 1]. */
  data: DataInput;
  /** Total number of steps (one step = nCritic discriminator updates + one generator update). */
  steps: number;
  /** Batch size requested from a DataSource. Default 64. */
  batchSize?: number;
  /** Size of the latent vector; read from the generator's first input when omitted. */
  latentDim?: number;
  /** Latent distribution: standard normal (default) or uniform on [-1, 1]. */
  latentDistribution?: 'normal' | 'uniform';
  /**
   * What draws normal latents: 'tfjs' (default) draws exactly `tf.randomNormal`'s numbers for each seed, which every
   * seeded figure in the docs relies on; 'fast' draws other numbers of the same distribution with a ziggurat
   * (`fastNormalValues`), about 3× faster per value: for tiny models, where drawing latents is a large part of a step.
   * Checkpoints record it; a resume with the other generator is refused (its latents would differ).
   */
  normalGenerator?: NormalGenerator;
  /** Default: non-saturating (Goodfellow et al. 2014). */
  loss?: GanLoss;
  /** Separate optimizers (TTUR). Default for each: Adam(2e-4, β1 = 0.5, β2 = 0.999) as in DCGAN. */
  optimizers?: { generator?: tf.Optimizer; discriminator?: tf.Optimizer };
  /** Discriminator updates per generator update. Default 1. */
  nCritic?: number;
  /** Seed for latent draws, plugin randomness and data shuffling. Default 0. */
  seed?: number;
  plugins?: GantryPlugin[];
  checkpoint?: CheckpointOptions;
  /** Check real batches for values outside [-1, 1]: only the first batch (default) or every batch. */
  validateData?: 'first' | 'every';
  /**
   * Stop (before any checkpoint) when a model's weight L2 norm exceeds this: the run is diverging. Default: no limit
   * (non-finite weights always stop the run).
   */
  maxWeightNorm?: number;
  /**
   * Runs each training step (from its `beforeStep` hooks to its scalars' read): for an engine that executes steps
   * differently, e.g. `captureSteps().run` from @gantry/engine, which runs recorded steps as TensorFlow graphs.
   * Default: the step runs as it is.
   */
  stepRunner?: StepRunner;
}

/** Runs training step `stepNumber` (1-based, counted over resumes), however it likes; returns what the step returned. */
export type StepRunner = <T>(step: () => Promise<T>, stepNumber: number) => Promise<T>;

const TRAINER_OPTION_KEYS = [
  'generator',
  'discriminator',
  'data',
  'steps',
  'batchSize',
  'latentDim',
  'latentDistribution',
  'normalGenerator',
  'loss',
  'optimizers',
  'nCritic',
  'seed',
  'plugins',
  'checkpoint',
  'validateData',
  'maxWeightNorm',
  'stepRunner',
] as const;

export interface TrainResult {
  /** Steps completed in total (including steps before a resume). */
  steps: number;
  reason: 'completed' | 'stopped';
  /** The scalars of the last step. */
  lastScalars: Record<string, number>;
  lastCheckpoint?: string;
}

/** TrainerOptions checked, with every default filled in. */
export interface ResolvedTrainerOptions {
  batchSize: number;
  nCritic: number;
  loss: GanLoss;
  latentDim: number;
  latentDistribution: 'normal' | 'uniform';
  normalGenerator: NormalGenerator;
  seed: number;
  optimizers: { generator: tf.Optimizer; discriminator: tf.Optimizer };
  plugins: readonly GantryPlugin[];
}

/** Checks the Trainer's options (one clear line per mistake) and fills in the defaults. */
export function resolveTrainerOptions(options: TrainerOptions): ResolvedTrainerOptions {
  checkOptions('Trainer', options, TRAINER_OPTION_KEYS);
  if (!options.generator || !options.discriminator) throw new GantryError('Trainer needs a generator and a discriminator');
  if (!options.data) throw new GantryError('Trainer needs data (a DataSource or an iterable of batches)');
  if (!Number.isInteger(options.steps) || options.steps < 0) {
    throw new GantryError(`Trainer option "steps" must be a non-negative integer, got ${options.steps}`);
  }
  const limit = options.maxWeightNorm;
  if (limit !== undefined && !(limit > 0 && Number.isFinite(limit))) {
    throw new GantryError(`Trainer option "maxWeightNorm" must be a positive number, got ${limit}`);
  }
  const nCritic = options.nCritic ?? 1;
  if (!Number.isInteger(nCritic) || nCritic < 1) {
    throw new GantryError(`Trainer option "nCritic" must be a positive integer, got ${options.nCritic}`);
  }
  const latentDistribution = options.latentDistribution ?? 'normal';
  if (latentDistribution !== 'normal' && latentDistribution !== 'uniform') {
    throw new GantryError(`Trainer option "latentDistribution" must be "normal" or "uniform", got "${latentDistribution}"`);
  }
  const normalGenerator = options.normalGenerator ?? 'tfjs';
  if (!NORMAL_GENERATORS.includes(normalGenerator)) {
    throw new GantryError(`Trainer option "normalGenerator" must be "tfjs" or "fast", got "${normalGenerator}"`);
  }
  const inferredLatent = shapeOf(options.generator, 'input')[1];
  const latentDim = options.latentDim ?? (inferredLatent as number);
  if (!latentDim) throw new GantryError('Cannot infer latentDim from the generator input; pass latentDim');
  if (inferredLatent !== null && inferredLatent !== latentDim) {
    throw new GantryError(`latentDim is ${latentDim} but the generator's first input takes ${inferredLatent}`);
  }
  const optimizers = {
    generator: options.optimizers?.generator ?? tf.train.adam(2e-4, 0.5, 0.999),
    discriminator: options.optimizers?.discriminator ?? tf.train.adam(2e-4, 0.5, 0.999),
  };
  if (optimizers.generator === optimizers.discriminator) {
    throw new GantryError('The generator and discriminator need separate optimizer instances (their state differs)');
  }
  return {
    batchSize: options.batchSize ?? 64,
    nCritic,
    loss: options.loss ?? nonSaturating(),
    latentDim,
    latentDistribution,
    normalGenerator,
    seed: options.seed ?? 0,
    optimizers,
    plugins: options.plugins ?? [],
  };
}
