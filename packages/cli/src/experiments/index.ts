import { GantryError } from '@gantry/core';
import mnistDcgan from './mnist-dcgan.js';
import mnistProgressive from './mnist-progressive.js';
import mnistSngan from './mnist-sngan.js';
import mnistWganGp from './mnist-wgan-gp.js';
import ringGan from './ring-gan.js';
import ringMinibatch from './ring-minibatch.js';
import ringUnrolled, { ringUnrolledFirstOrder } from './ring-unrolled.js';
import ringWganGp from './ring-wgan-gp.js';
import type { Experiment } from './types.js';

export { defineExperiment, type Experiment, type ExperimentContext, type ExperimentSetup, type ExperimentDefaults } from './types.js';

/** Built-in experiments by name. Packages add theirs here as they land. */
export const experiments: Record<string, Experiment> = Object.fromEntries(
  [mnistDcgan, mnistProgressive, mnistSngan, mnistWganGp, ringGan, ringMinibatch, ringUnrolled, ringUnrolledFirstOrder, ringWganGp].map((e) => [e.name, e]),
);

export function listExperiments(): Experiment[] {
  return Object.values(experiments).sort((a, b) => a.name.localeCompare(b.name));
}

export function builtinExperiment(name: string): Experiment {
  const found = experiments[name];
  if (!found) {
    throw new GantryError(`Unknown experiment "${name}" (built-in: ${Object.keys(experiments).sort().join(', ')}; or pass a .js/.mjs/.ts file)`);
  }
  return found;
}
