import { resolve } from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { GantryError, Rng, Trainer, writeNpy } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import { gridLabels, writeImageGrid } from '@gantry/monitor';
import { buildForRun, experimentOfRun, readRunConfig } from '../run-config.js';
import { intArg } from './train.js';

export interface SampleFlags {
  n: number;
  out: string;
  seed: number;
  backend: string;
  quiet?: boolean;
  /** Conditional runs: only this class (default: one row per class). */
  class?: number;
}

/**
 * Generates N samples from a run's latest checkpoint (its sampling generator: the EMA copy when the run used one):
 * a PNG grid for image data, float32 .npy for vector data.
 */
export async function sample(runDirArg: string, flags: SampleFlags): Promise<string> {
  const runDir = resolve(runDirArg);
  const config = await readRunConfig(runDir);
  await useBackend(flags.backend as BackendName, { quiet: flags.quiet });
  const experiment = await experimentOfRun(config);
  const setup = await buildForRun(experiment, config);
  const trainer = new Trainer({ ...setup, steps: config.steps, batchSize: config.batchSize, seed: config.seed });
  await trainer.restore(runDir);
  await trainer.setup();
  const out = resolve(flags.out);
  const classes = trainer.conditional ? trainer.numClasses : undefined;
  if (flags.class !== undefined) {
    if (!classes) throw new GantryError(`--class needs a conditional run; ${runDir} trains an unconditional generator`);
    if (flags.class >= classes) throw new GantryError(`--class ${flags.class} is out of range: the run has classes 0–${classes - 1}`);
  }
  const rng = new Rng(flags.seed);
  const z = trainer.sampleLatent(flags.n, rng);
  // One row per class, or every sample of the requested class.
  const cols = classes && flags.class === undefined ? Math.ceil(flags.n / classes) : undefined;
  const labels = classes
    ? tf.tensor1d(flags.class !== undefined ? new Int32Array(flags.n).fill(flags.class) : gridLabels(flags.n, cols!, classes), 'int32')
    : undefined;
  const samples = trainer.generate(z, labels);
  z.dispose();
  labels?.dispose();
  try {
    const data = (await samples.data()) as Float32Array;
    if (samples.rank === 4) {
      if (!out.endsWith('.png')) throw new GantryError(`Image samples are written as a PNG grid: --out must end in .png (got ${flags.out})`);
      await writeImageGrid(data, samples.shape as [number, number, number, number], out, { cols });
    } else {
      if (!out.endsWith('.npy')) throw new GantryError(`Vector samples are written as float32 .npy: --out must end in .npy (got ${flags.out})`);
      writeNpy(out, data, samples.shape);
    }
  } finally {
    samples.dispose();
  }
  if (!flags.quiet) console.log(`Wrote ${flags.n} samples from step ${trainer.step} to ${out}`);
  return out;
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description("write samples from a run's latest checkpoint (PNG grid for images, .npy for vectors)")
    .argument('<run-dir>', 'run folder written by gantry train')
    .option('--n <n>', 'number of samples', intArg('--n', 1), 64)
    .requiredOption('--out <file>', 'output file (.png or .npy)')
    .option('--seed <n>', 'latent seed', intArg('--seed', 0), 0)
    .option('--class <k>', 'conditional runs: samples of class k only (default: one row per class)', intArg('--class', 0))
    .option('--backend <name>', 'auto | wasm | cpu | tensorflow | webgpu', 'auto')
    .option('--quiet', 'print nothing but errors')
    .action(async (runDir: string, flags: SampleFlags) => {
      await sample(runDir, flags);
    });
}
