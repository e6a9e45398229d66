import { GantryError } from '@gantry/core';
import mnistCgan from './mnist-cgan.js';
import mnistDcgan from './mnist-dcgan.js';
import { mnistLimited, mnistLimitedAda, mnistLimitedDiffAugment } from './mnist-limited.js';
import mnistProgressive from './mnist-progressive.js';
import mnistR3gan from './mnist-r3gan.js';
import mnistSngan from './mnist-sngan.js';
import mnistWganGp from './mnist-wgan-gp.js';
import ringGan from './ring-gan.js';
import ringMinibatch from './ring-minibatch.js';
import ringUnrolled, { ringUnrolledFirstOrder } from './ring-unrolled.js';
import ringWganGp from './ring-wgan-gp.js';
import type { Experiment } from './types.js';

export { buildExperiment, defineExperiment, type Experiment, type ExperimentContext, type ExperimentSetup, type ExperimentDefaults } from './types.js';

/** Built-in experiments by name. Packages add theirs here as they land. */
export const experiments: Record<string, Experiment> = Object.fromEntries(
  [mnistCgan, mnistDcgan, mnistLimited, mnistLimitedAda, mnistLimitedDiffAugment, mnistProgressive, mnistR3gan, mnistSngan, mnistWganGp, ringGan, ringMinibatch, ringUnrolled, ringUnrolledFirstOrder, ringWganGp].map((e) => [e.name, e]),
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
