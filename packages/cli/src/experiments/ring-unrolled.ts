import { unrolled } from '@gantry/unrolled';
import { ringGanSetup } from './ring-gan.js';
import { defineExperiment, type ExperimentSetup } from './types.js';
import type { GantryPlugin } from '@gantry/core';

const withPlugins = (setup: ExperimentSetup, ...plugins: GantryPlugin[]): ExperimentSetup => ({
  ...setup,
  plugins: [...(setup.plugins ?? []), ...plugins],
});

/**
 * ring-gan's networks, data, loss and optimizers, with the generator trained against the discriminator unrolled
 * 5 steps ahead (Metz et al. 2017). Full unrolling differentiates through the lookahead; the ring discriminator is a
 * Dense/ReLU MLP, which is what full unrolling supports.
 */
export default defineExperiment({
  name: 'ring-unrolled',
  description: 'ring-gan with a 5-step unrolled discriminator (Metz et al. 2017), full second-order unrolling',
  defaults: { steps: 5000, batchSize: 512, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => withPlugins(ringGanSetup(), unrolled({ steps: 5, mode: 'full' })),
});

/** The same with first-order unrolling: the lookahead discriminator is held constant in the generator's gradient. */
export const ringUnrolledFirstOrder = defineExperiment({
  name: 'ring-unrolled-first-order',
  description: 'ring-gan with a 5-step unrolled discriminator, first-order (no gradient through the lookahead)',
  defaults: { steps: 5000, batchSize: 512, sampleEvery: 500, checkpointEvery: 1000 },
  build: () => withPlugins(ringGanSetup(), unrolled({ steps: 5, mode: 'first-order' })),
});
