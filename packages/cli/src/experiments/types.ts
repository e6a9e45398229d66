import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { DataSource, GanLoss, GantryPlugin } from '@gantry/core';

/** What `build` receives: the run's settings after CLI flags were applied. */
export interface ExperimentContext {
  seed: number;
  batchSize: number;
  steps: number;
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
  build(ctx: ExperimentContext): ExperimentSetup | Promise<ExperimentSetup>;
}

export function defineExperiment(experiment: Experiment): Experiment {
  return experiment;
}
