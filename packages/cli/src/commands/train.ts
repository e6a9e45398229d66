import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { GantryError, Trainer } from '@gantry/core';
import { captureSteps, useBackend, wasmConvolution as engineWasmConvolution, type BackendName } from '@gantry/engine';
import { monitorPlugins } from '@gantry/monitor';
import {
  buildForRun,
  experimentOfRun,
  loadExperiment,
  readRunConfig,
  runConfigProblem,
  type RunConfig,
  type WasmConvolution,
} from '../run-config.js';
import { claimRunFolder } from '../run-folder.js';
import { stopOnSignals } from '../stop-signals.js';
import { GANTRY_VERSION } from '../version.js';

export interface TrainFlags {
  steps?: number;
  batch?: number;
  seed?: number;
  /** Default: auto for a new run; a resumed run continues on the backend it last trained on. */
  backend?: string;
  out?: string;
  checkpointEvery?: number;
  sampleEvery?: number;
  resume?: string;
  /** Stop when a model's weight norm passes this (divergence). */
  maxWeightNorm?: number;
  /** Replace the run already in --out instead of refusing. */
  overwrite?: boolean;
  tensorboard?: boolean;
  wandb?: boolean;
  quiet?: boolean;
  /** tensorflow backend: run recorded steps as TensorFlow graphs (default true; `--no-graph`). */
  graph?: boolean;
  /** tensorflow backend: compile the graph steps with XLA (useBackend's `xla`); a resumed run keeps its choice. */
  xla?: boolean;
  /** Draw normal latents with the fast generator (Trainer option normalGenerator 'fast'); fixed for a run. */
  fastNormals?: boolean;
}

/** A commander parser for integer flags of at least `min` (0: intervals and seeds; 1: steps and batch size). */
export const intArg = (name: string, min: 0 | 1) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer`);
  return n;
};

const positiveNumber = (name: string) => (value: string) => {
  const x = Number(value);
  if (!(x > 0 && Number.isFinite(x))) throw new InvalidArgumentError(`${name} must be a positive number`);
  return x;
};

const timestamp = () => new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);

/** Runs (or resumes) one training run into a run folder; returns the folder. */
export async function train(experimentArg: string | undefined, flags: TrainFlags): Promise<string> {
  let config: RunConfig;
  let runDir: string;
  /** A resumed run's backend and step mode so far: continuing on others is not bit for bit. */
  let trainedOn: Pick<RunConfig, 'backend' | 'graphSteps' | 'xla' | 'wasmConvolution'> | undefined;
  if (flags.resume && flags.overwrite) throw new GantryError('--overwrite replaces a run; it cannot be combined with --resume');
  if (flags.resume && flags.out && resolve(flags.out) !== resolve(flags.resume)) {
    throw new GantryError(`--resume continues ${flags.resume} in place; drop --out ${flags.out}`);
  }
  if (flags.resume) {
    runDir = resolve(flags.resume);
    const saved = await readRunConfig(runDir);
    for (const [flag, key] of [['batch', 'batchSize'], ['seed', 'seed']] as const) {
      if (flags[flag] !== undefined && flags[flag] !== saved[key]) {
        throw new GantryError(`--${flag} ${flags[flag]} differs from the run's ${key} ${saved[key]}; a resumed run keeps its settings`);
      }
    }
    if (flags.fastNormals && (saved.normalGenerator ?? 'tfjs') !== 'fast') {
      throw new GantryError(`--fast-normals: the run draws its latents with the "${saved.normalGenerator ?? 'tfjs'}" generator; a resumed run keeps its settings`);
    }
    if (experimentArg && experimentArg !== saved.experiment && resolve(experimentArg) !== saved.experimentFile) {
      throw new GantryError(`--resume ${flags.resume} is a "${saved.experiment}" run, not "${experimentArg}"`);
    }
    // Steps and the checkpoint/sample intervals may change on resume: they do not change the training math.
    config = {
      ...saved,
      steps: flags.steps ?? saved.steps,
      checkpointEvery: flags.checkpointEvery ?? saved.checkpointEvery,
      sampleEvery: flags.sampleEvery ?? saved.sampleEvery,
      maxWeightNorm: flags.maxWeightNorm ?? saved.maxWeightNorm,
    };
    trainedOn = { backend: saved.backend, graphSteps: saved.graphSteps, xla: saved.xla, wasmConvolution: saved.wasmConvolution };
  } else {
    if (!experimentArg) throw new GantryError('Name an experiment (e.g. gantry train mnist-dcgan) or pass --resume <run-dir>');
    const { experiment, file } = await loadExperiment(experimentArg);
    runDir = resolve(flags.out ?? join('runs', `${experiment.name}-${timestamp()}`));
    config = {
      experiment: experiment.name,
      experimentFile: file,
      steps: flags.steps ?? experiment.defaults.steps,
      batchSize: flags.batch ?? experiment.defaults.batchSize,
      seed: flags.seed ?? 0,
      backend: flags.backend ?? 'auto',
      checkpointEvery: flags.checkpointEvery ?? experiment.defaults.checkpointEvery,
      sampleEvery: flags.sampleEvery ?? experiment.defaults.sampleEvery,
      maxWeightNorm: flags.maxWeightNorm,
      normalGenerator: flags.fastNormals ? 'fast' : 'tfjs',
      createdAt: new Date().toISOString(),
      gantryVersion: GANTRY_VERSION,
    };
  }
  const problem = runConfigProblem(config);
  if (problem) throw new GantryError(`Invalid run settings: ${problem}`);
  if (flags.xla && flags.graph === false) throw new GantryError('--xla compiles the steps that run as TensorFlow graphs; it does nothing with --no-graph');
  const backendName = flags.backend ?? config.backend;
  // A resumed run keeps XLA when it stays on tensorflow (another backend continues it without, with the note below).
  const xla = Boolean(flags.xla ?? (trainedOn?.xla && backendName === 'tensorflow'));
  const backend = await useBackend(backendName as BackendName, { quiet: flags.quiet, xla }).catch((error: unknown) => {
    if (trainedOn && flags.backend == null && error instanceof GantryError) {
      throw new GantryError(`${error.message} (the run trained on ${trainedOn.backend}; --backend NAME continues it on another)`);
    }
    throw error;
  });
  const experiment = await experimentOfRun(config);
  const setup = await buildForRun(experiment, config);
  // On TensorFlow a step runs as a graph once recorded: no per-op dispatch (see ENGINE.md, "Steps as TensorFlow graphs").
  // A run that trained with eager steps resumes with them.
  const graphSteps = backend.name === 'tensorflow' && flags.graph !== false && trainedOn?.graphSteps !== false;
  const xlaGraphs = xla && graphSteps;
  const wasmConvolution: WasmConvolution | undefined = backend.name === 'wasm' ? engineWasmConvolution() : undefined;
  if (trainedOn) {
    // A wasm run from before the convolution was recorded ran XNNPACK's.
    const before = engineName({ ...trainedOn, wasmConvolution: trainedOn.wasmConvolution ?? 'xnnpack' });
    const now = engineName({ backend: backend.name, graphSteps, xla: xlaGraphs, wasmConvolution });
    if (before !== now) {
      console.error(`gantry: the run trained on ${before}; continuing on ${now} computes the same steps to float32 rounding, not bit for bit`);
    }
  }
  const capture = graphSteps ? captureSteps({ warn: (line) => console.error(`gantry: ${line}`) }) : undefined;
  const trainer = new Trainer({
    stepRunner: capture?.run,
    generator: setup.generator,
    discriminator: setup.discriminator,
    data: setup.data,
    loss: setup.loss,
    optimizers: setup.optimizers,
    nCritic: setup.nCritic,
    latentDim: setup.latentDim,
    latentDistribution: setup.latentDistribution,
    normalGenerator: config.normalGenerator ?? 'tfjs',
    steps: config.steps,
    batchSize: config.batchSize,
    seed: config.seed,
    checkpoint: { dir: join(runDir, 'checkpoints'), every: config.checkpointEvery },
    maxWeightNorm: config.maxWeightNorm,
    plugins: [
      ...(setup.plugins ?? []),
      ...monitorPlugins({
        runDir,
        quiet: flags.quiet,
        sampleEvery: config.sampleEvery,
        tensorboard: flags.tensorboard,
        wandb: flags.wandb,
      }),
    ],
  });
  config.loss = trainer.loss.name;
  config.nCritic = trainer.nCritic;
  config.backend = backend.name;
  config.graphSteps = graphSteps;
  config.xla = xlaGraphs;
  config.wasmConvolution = wasmConvolution;

  // Every input is valid: only now does the run folder change (locked, so a second writer refuses).
  const lock = await claimRunFolder(runDir, { resume: Boolean(flags.resume), overwrite: flags.overwrite });
  // Ctrl-C, SIGTERM, SIGHUP: finish the step, checkpoint, report, exit 0; the same again a second later aborts.
  const removeSignalHandlers = stopOnSignals(() => trainer.stop());
  try {
    if (flags.resume) {
      const from = await trainer.restore(runDir, { warn: (line) => console.error(`gantry: ${line}`) });
      if (trainer.step >= config.steps) {
        throw new GantryError(`${runDir} is at step ${trainer.step} already; pass --steps above ${trainer.step} to train further`);
      }
      if (!flags.quiet) console.log(`Resuming from ${from} (step ${trainer.step} of ${config.steps})`);
    }
    await writeFile(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    const result = await trainer.train();
    console.log(
      `${result.reason === 'completed' ? 'Done' : 'Stopped'} at step ${result.steps}. Run folder: ${runDir}` +
        (result.lastCheckpoint ? `\nLatest checkpoint: ${result.lastCheckpoint}` : ''),
    );
  } finally {
    removeSignalHandlers();
    capture?.dispose();
    lock.release();
  }
  return runDir;
}

/**
 * A backend and step mode as the resume note names them: tensorflow's graph and eager steps round differently, and so
 * do wasm's two convolutions.
 */
function engineName({ backend, graphSteps, xla, wasmConvolution }: Pick<RunConfig, 'backend' | 'graphSteps' | 'xla' | 'wasmConvolution'>): string {
  if (backend === 'wasm') return `wasm (${wasmConvolution === 'fma' ? 'FMA' : "XNNPACK's"} convolution)`;
  if (backend !== 'tensorflow' || graphSteps === undefined) return backend;
  return `tensorflow with ${graphSteps ? (xla ? 'XLA-compiled graph' : 'graph') : 'eager'} steps`;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train an experiment (built-in name or a file default-exporting defineExperiment(...)) into a run folder')
    .argument('[experiment]', 'built-in experiment name or path to an experiment module')
    .option('--steps <n>', 'total training steps', intArg('--steps', 1))
    .option('--batch <n>', 'batch size', intArg('--batch', 1))
    .option('--seed <n>', 'random seed (weights, latents, data order)', intArg('--seed', 0))
    .option('--backend <name>', 'auto | wasm | cpu | tensorflow | webgpu (default: auto; with --resume, the backend the run trained on)')
    .option('--out <dir>', 'run folder (default runs/<experiment>-<time>)')
    .option('--checkpoint-every <n>', 'checkpoint interval in steps', intArg('--checkpoint-every', 0))
    .option('--sample-every <n>', 'sample-grid interval in steps', intArg('--sample-every', 0))
    .option('--resume <run-dir>', 'continue a run from its latest checkpoint (exactly)')
    .option('--max-weight-norm <x>', "stop, before checkpointing, when a model's weight L2 norm passes x (divergence)", positiveNumber('--max-weight-norm'))
    .option('--overwrite', 'replace the run already in --out (without it, an existing run is never touched)')
    .option('--tensorboard', 'also write TensorBoard event files')
    .option('--wandb', 'also stream to Weights & Biases (WANDB_API_KEY, WANDB_PROJECT, …)')
    .option('--quiet', 'plain log lines instead of a progress bar')
    .option('--no-graph', 'tensorflow backend: run every op eagerly instead of recorded steps as TensorFlow graphs')
    .option('--xla', 'tensorflow backend: compile the graph steps with XLA (faster for small dense models such as the ring MLPs, slower for convolutions)')
    .option('--fast-normals', 'draw normal latents with the fast generator (other numbers than the default for the same seed; fixed for a run)')
    .action(async (experiment: string | undefined, flags: TrainFlags) => {
      await train(experiment, flags);
    });
}
