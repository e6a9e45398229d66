/**
 * A shorter mnist-progressive for quick looks (2200 steps through 4→8→16→32), as an experiment module:
 *
 *   npx tsx --conditions=@gantry/source packages/cli/src/bin.ts train packages/progressive/bench/mnist-short.ts
 *
 * GANTRY_SCHEDULE_SCALE=0.01 shrinks every phase (smoke test: 22 steps reach 32×32).
 */
import * as tf from '@tensorflow/tfjs-core';
import { nonSaturating } from '@gantry/core';
import { mnist } from '@gantry/datasets';
import { minibatchStdDev } from '@gantry/minibatch-disc';
import { ema } from '@gantry/stabilizers';
import { progressive, progressiveGan } from '../src/index.js';

const scale = Number(process.env.GANTRY_SCHEDULE_SCALE ?? '1');
const scaled = (list: number[]) => list.map((n) => Math.round(n * scale));
const schedule = { stableSteps: scaled([200, 200, 300, 600]), fadeSteps: scaled([0, 200, 300, 400]) };

export default {
  name: 'mnist-progressive-short',
  description: 'mnist-progressive with a 2200-step schedule',
  defaults: { steps: schedule.stableSteps.reduce((a, b) => a + b, 0) + schedule.fadeSteps.reduce((a, b) => a + b, 0), batchSize: 64, sampleEvery: 100, checkpointEvery: 1000 },
  build: () => {
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
      data: mnist({ split: 'train', padTo: 32 }),
      loss: nonSaturating(),
      optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.99), discriminator: tf.train.adam(2e-4, 0.5, 0.99) },
      // β 0.995: ProGAN's EMA half-life of 10k images at batch 64 (0.5^(64/10000)).
      plugins: [grow, ema({ beta: 0.995 })],
    };
  },
};
