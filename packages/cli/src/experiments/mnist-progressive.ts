import * as tf from '@tensorflow/tfjs-core';
import { nonSaturating } from '@gantry/core';
import { progressive, progressiveGan } from '@gantry/progressive';
import { minibatchStdDev } from '@gantry/minibatch-disc';
import { ema } from '@gantry/stabilizers';
import { defineExperiment, type ExperimentContext, type ExperimentSetup } from './types.js';

/** Steps per stage at 4, 8, 16, 32 (stable phases) and fade-in lengths of the 8, 16 and 32 blocks. */
export const MNIST_PROGRESSIVE_SCHEDULE = {
  stableSteps: [500, 500, 1000, 2000],
  fadeSteps: [0, 500, 500, 1000],
};

/**
 * Progressive growing (Karras et al. 2018) on MNIST padded to 32×32: 4×4 → 8×8 → 16×16 → 32×32, each new block
 * fading in linearly, with ProGAN's pixel norm in the generator, its minibatch-stddev layer in the discriminator,
 * optimizer state reset at each growth step and an EMA generator for samples. `--resume` works at any stage (the
 * plugin swaps in the checkpoint's stage before weights are restored).
 */
/** The mnist-progressive setup for any growth schedule (benchmarks run it with shorter schedules). */
export function mnistProgressiveSetup(ctx: ExperimentContext, schedule: Parameters<typeof progressive>[1]): ExperimentSetup {
  const gan = progressiveGan({
    latentDim: 128,
    channels: 1,
    resolution: 32,
    filters: [128, 64, 32, 16],
    layersBeforeFinalBlock: () => [minibatchStdDev()],
  });
  const grow = progressive(gan, schedule);
  return {
    ...grow.modelsForStep(1),
    data: ctx.mnist({ split: 'train', padTo: 32 }),
    loss: nonSaturating(),
    optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.99), discriminator: tf.train.adam(2e-4, 0.5, 0.99) },
    // β 0.995: ProGAN's EMA half-life of 10k images at batch 64 (0.5^(64/10000)).
    plugins: [grow, ema({ beta: 0.995 })],
  };
}

export default defineExperiment({
  name: 'mnist-progressive',
  description: 'Progressive growing 4→8→16→32 on MNIST padded to 32×32: fade-ins, pixel norm, minibatch stddev, EMA generator',
  defaults: { steps: 6000, batchSize: 64, sampleEvery: 250, checkpointEvery: 1000 },
  needs: { mnist: ['train'] },
  build: (ctx) => mnistProgressiveSetup(ctx, MNIST_PROGRESSIVE_SCHEDULE),
});
