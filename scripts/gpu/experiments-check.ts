/**
 * Trains the experiments of issue 19 a few steps on webgpu and on cpu from the same seed and compares them: every
 * scalar of every step (losses, penalty terms, ADA's r_t and p, LeCam's anchors, AC-GAN's class terms), the weight updates, the eval
 * row (FID and class accuracy on a few samples) and the sampling (EMA) generator's output; then a checkpoint at
 * step RESUME_AT on webgpu, restored into freshly built models, must continue exactly as the uninterrupted webgpu run,
 * and numTensors must stay flat from step 2 on. Runs where a WebGPU adapter exists (a GPU, or a software Vulkan with
 * --fallback). One JSON line per case; exit code 1 if any case fails.
 *
 *   VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json LP_NUM_THREADS=1 \
 *     npx tsx --conditions=@gantry/source scripts/gpu/experiments-check.ts --fallback [--only name,name]
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { Trainer } from '@gantry/core';
import { mnist } from '@gantry/datasets';
import { initWebGpu, useBackend } from '@gantry/engine';
import { fid } from '@gantry/fid';
import { monitorPlugins } from '@gantry/monitor';
import { ada } from '@gantry/augment';
import { auxiliaryClassifier, lecam } from '@gantry/stabilizers';
import { conditionalGenerator } from '../../packages/cli/src/experiments/mnist-cgan.js';
import mnistCgan from '../../packages/cli/src/experiments/mnist-cgan.js';
import mnistR3gan from '../../packages/cli/src/experiments/mnist-r3gan.js';
import { mnistLimited, mnistLimitedAda, mnistLimitedDiffAugment } from '../../packages/cli/src/experiments/mnist-limited.js';
import { buildExperiment, defineExperiment, type Experiment, type ExperimentSetup } from '../../packages/cli/src/experiments/types.js';

const fallback = process.argv.includes('--fallback');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : undefined;

const STEPS = 4;
const RESUME_AT = 2;
const BATCH = 8;
const SEED = 7;
/** Generated (and real) images per FID / class-accuracy evaluation: enough to exercise it, far too few for a real FID. */
const EVAL_SAMPLES = 40;
/**
 * Scalars and weight updates: relative error allowed between webgpu and cpu after STEPS steps. WebGPU's float32
 * sums are ordered differently; two steps of the reference models agreed to 1.3e-4 in the weight updates
 * (check-kernels.ts), and Adam amplifies the differences of near-zero gradients a little more each step.
 */
const TOLERANCE = 1e-2;

/** ADA with p starting at 0.5 and adapting every 2 steps, so its transforms run and p moves inside STEPS steps. */
const adaActive = defineExperiment({
  ...mnistLimitedAda,
  name: 'mnist-limited-ada@p0.5',
  build: async (ctx) => {
    const setup = await mnistLimitedAda.build(ctx);
    return { ...setup, plugins: (setup.plugins ?? []).map((p) => (p.name === 'ada' ? ada({ initialP: 0.5, interval: 2 }) : p)) };
  },
});

/** mnist-limited with LeCam regularization (issue 19's option for limited data; no built-in experiment uses it). */
const limitedLecam = defineExperiment({
  ...mnistLimited,
  name: 'mnist-limited+lecam',
  build: async (ctx) => {
    const setup = await mnistLimited.build(ctx);
    return { ...setup, plugins: [lecam({ lambda: 0.3 }), ...(setup.plugins ?? [])] };
  },
});

/**
 * AC-GAN (the `ac` plugin): mnist-cgan's conditional generator against the reference discriminator's trunk with
 * 1 + 10 outputs, as in the tfjs-examples mnist-acgan recipe.
 */
const acgan = defineExperiment({
  name: 'ac-gan',
  description: 'AC-GAN on MNIST (check only)',
  defaults: { steps: STEPS, batchSize: BATCH, sampleEvery: 0, checkpointEvery: 0 },
  build: (ctx) => {
    return {
      generator: conditionalGenerator(),
      discriminator: acDiscriminator(),
      data: ctx.mnist({ split: 'train' }),
      ...auxiliaryClassifier({ classes: 10 }),
      optimizers: { generator: tf.train.adam(2e-4, 0.5, 0.999), discriminator: tf.train.adam(2e-4, 0.5, 0.999) },
    };
  },
});

/** The reference discriminator's convolutions with an 11-unit output (real/fake logit + 10 class logits). */
function acDiscriminator(): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 64, kernelSize: 4, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.conv2d({ filters: 128, kernelSize: 4, strides: 2, padding: 'same' }),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 11 }),
    ],
  });
}

const CASES: Experiment[] = [mnistCgan, mnistR3gan, mnistLimited, mnistLimitedDiffAugment, mnistLimitedAda, adaActive, limitedLecam, acgan];

interface RunResult {
  scalars: Record<string, number>[];
  evals: Record<string, number>[];
  startWeights: Float32Array[];
  endWeights: Float32Array[];
  /** The sampling generator's (EMA copy's, where there is one) images for fixed latents after the last step. */
  samples: Float32Array;
  /** numTensors after each step. */
  tensorCounts: number[];
  /** numTensors after everything the run built was disposed, less numTensors before it started. */
  leftoverTensors: number;
  /** Files the CLI's monitor plugins wrote (sample grids with one row per class for a conditional generator, etc.). */
  runFiles: string[];
}

async function readAll(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map(async (t) => (await t.data()) as Float32Array));
}

/** Builds the experiment on `backend` and trains it to `steps` (restoring `restoreFrom` first, checkpointing into `checkpointDir`). */
async function run(
  experiment: Experiment,
  backend: string,
  options: { steps: number; checkpointDir?: string; restoreFrom?: string },
): Promise<RunResult> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const ctx = {
    seed: SEED,
    batchSize: BATCH,
    steps: STEPS,
    mnist,
    fid: (o: Parameters<typeof fid>[0]) => fid({ ...o, samples: EVAL_SAMPLES, realSamples: EVAL_SAMPLES, batchSize: EVAL_SAMPLES }),
  };
  const setup: ExperimentSetup = await buildExperiment(experiment, ctx);
  // What `gantry train` adds: diagnostics, metrics.jsonl, sample grids, TensorBoard, the report (every RESUME_AT steps).
  const runDir = await mkdtemp(join(tmpdir(), 'gantry-gpu-run-'));
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const monitor = monitorPlugins({ runDir, quiet: true, stream: silent, sampleEvery: RESUME_AT, tensorboard: true, reportEvery: RESUME_AT });
  const trainer = new Trainer({
    ...setup,
    plugins: [...(setup.plugins ?? []), ...monitor],
    steps: options.steps,
    batchSize: BATCH,
    seed: SEED,
    checkpoint: options.checkpointDir ? { dir: options.checkpointDir, every: RESUME_AT } : undefined,
  });
  const weights = () => [...setup.generator.weights, ...setup.discriminator.weights].map((w) => w.read());
  const startWeights = await readAll(weights());
  if (options.restoreFrom) await trainer.restore(options.restoreFrom);
  const scalars: Record<string, number>[] = [];
  const evals: Record<string, number>[] = [];
  const tensorCounts: number[] = [];
  trainer.on('step:end', ({ scalars: s }) => {
    scalars.push(s);
    tensorCounts.push(tf.memory().numTensors);
  });
  trainer.on('eval', ({ metrics }) => void evals.push(metrics));
  await trainer.train();
  const endWeights = await readAll(weights());
  const samples = tf.tidy(() => {
    const z = tf.tensor2d(Array.from({ length: 4 * trainer.latentDim }, (_, i) => Math.sin(i + 1)), [4, trainer.latentDim]);
    return trainer.generate(z, trainer.conditional ? tf.tensor1d([0, 3, 6, 9], 'int32') : undefined);
  });
  const sampleValues = (await samples.data()) as Float32Array;
  samples.dispose();
  // The EMA copy outlives train() (it is what samples after training); the owner of the run disposes it.
  if (trainer.samplingGenerator !== setup.generator) trainer.samplingGenerator.dispose();
  setup.generator.dispose();
  setup.discriminator.dispose();
  for (const o of Object.values(trainer.optimizers)) o.dispose();
  const runFiles = [...(await readdir(runDir)), ...(await readdir(join(runDir, 'samples'))).map((f) => `samples/${f}`)];
  await rm(runDir, { recursive: true, force: true });
  const leftoverTensors = tf.memory().numTensors - before;
  return { scalars, evals, startWeights, endWeights, samples: sampleValues, tensorCounts, runFiles, leftoverTensors };
}

/** Largest relative difference of matching scalars (absolute below `floor`), and the names that differ in presence. */
function compareRows(a: Record<string, number>[], b: Record<string, number>[], floor = 1e-3): { worst: number; where: string } {
  let worst = 0;
  let where = '';
  if (a.length !== b.length) return { worst: Infinity, where: `rows ${a.length} vs ${b.length}` };
  a.forEach((row, i) => {
    const keys = new Set([...Object.keys(row), ...Object.keys(b[i])]);
    for (const k of keys) {
      const x = row[k];
      const y = b[i][k];
      const err = x === y ? 0 : Number.isFinite(x) && Number.isFinite(y) ? Math.abs(x - y) / Math.max(Math.abs(y), floor) : Infinity;
      if (err > worst) [worst, where] = [err, `row ${i + 1} ${k}: ${x} vs ${y}`];
    }
  });
  return { worst, where };
}

/** Relative error in the 2-norm. */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  b.forEach((v, i) => {
    num += (a[i] - v) ** 2;
    den += v * v;
  });
  return Math.sqrt(num / den);
}

/** Relative error (2-norm) of webgpu's weight updates against cpu's, all weights together. */
function updateError(gpu: RunResult, cpu: RunResult): number {
  let num = 0;
  let den = 0;
  cpu.endWeights.forEach((w, i) => {
    w.forEach((v, j) => {
      const du = v - cpu.startWeights[i][j];
      num += (gpu.endWeights[i][j] - gpu.startWeights[i][j] - du) ** 2;
      den += du * du;
    });
  });
  return Math.sqrt(num / den);
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
  return worst;
}

const flatFromStep2 = (counts: number[]) => counts.slice(1).every((c) => c === counts[1]);

let failures = 0;
function report(record: Record<string, unknown>, ok: boolean): void {
  if (!ok) failures++;
  process.stdout.write(JSON.stringify({ kind: 'experiment-check', ...record, ok }) + '\n');
}

async function checkExperiment(experiment: Experiment): Promise<void> {
  const started = performance.now();
  const cpu = await run(experiment, 'cpu', { steps: STEPS });
  const gpu = await run(experiment, 'webgpu', { steps: STEPS });
  const dir = await mkdtemp(join(tmpdir(), 'gantry-gpu-resume-'));
  try {
    const first = await run(experiment, 'webgpu', { steps: RESUME_AT, checkpointDir: dir });
    const resumed = await run(experiment, 'webgpu', { steps: STEPS, restoreFrom: dir });
    const scalars = compareRows(gpu.scalars, cpu.scalars);
    const evals = compareRows(gpu.evals, cpu.evals);
    const updates = updateError(gpu, cpu);
    const samples = relErr(gpu.samples, cpu.samples);
    const resumeScalars = compareRows(resumed.scalars, gpu.scalars.slice(RESUME_AT), 0);
    const resumeEvals = compareRows(resumed.evals, gpu.evals.slice(-resumed.evals.length), 0);
    const resumeWeights = maxAbsDiff(resumed.endWeights, gpu.endWeights);
    const startSame = maxAbsDiff(gpu.startWeights, cpu.startWeights) === 0;
    const runs = [cpu, gpu, first, resumed];
    const leakFree = runs.every((r) => flatFromStep2(r.tensorCounts) && r.leftoverTensors === 0);
    const wroteRun = gpu.runFiles.includes('metrics.jsonl') && gpu.runFiles.filter((f) => f.startsWith('samples/')).length >= STEPS / RESUME_AT;
    const exactResume = resumeScalars.worst === 0 && resumeEvals.worst === 0 && resumeWeights === 0;
    report(
      {
        experiment: experiment.name,
        steps: STEPS,
        batch: BATCH,
        scalars_rel_err: scalars.worst,
        scalars_worst: scalars.where,
        weight_update_rel_err: updates,
        sample_rel_err: samples,
        eval_rel_err: evals.worst,
        eval_worst: evals.where,
        evals_gpu: gpu.evals,
        evals_cpu: cpu.evals,
        last_scalars_gpu: gpu.scalars.at(-1),
        last_scalars_cpu: cpu.scalars.at(-1),
        same_initial_weights: startSame,
        resume_exact: exactResume,
        resume_detail: exactResume ? undefined : { scalars: resumeScalars, evals: resumeEvals, weights: resumeWeights },
        run_files_gpu: gpu.runFiles,
        tensors_per_step_gpu: gpu.tensorCounts,
        tensors_per_step_resumed: resumed.tensorCounts,
        leftover_tensors: runs.map((r) => r.leftoverTensors),
        leak_free: leakFree,
        seconds: Math.round((performance.now() - started) / 100) / 10,
      },
      startSame && leakFree && exactResume && wroteRun && Math.max(scalars.worst, evals.worst, updates, samples) <= TOLERANCE,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const info = await initWebGpu({ allowFallbackAdapter: fallback });
  process.stdout.write(JSON.stringify({ kind: 'init', ...info }) + '\n');
  // After initWebGpu, so Gantry's gradient wrappers cover webgpu's kernels too (as `useBackend('webgpu')` does).
  await useBackend('cpu', { quiet: true });
  for (const experiment of CASES) {
    if (only && !only.includes(experiment.name)) continue;
    try {
      await checkExperiment(experiment);
    } catch (error) {
      report({ experiment: experiment.name, error: String(error instanceof Error ? error.stack : error) }, false);
    }
  }
  process.stdout.write(JSON.stringify({ kind: 'experiments-check-summary', failures }) + '\n');
}

main().then(
  () => process.exit(failures > 0 ? 1 : 0),
  (err) => {
    process.stdout.write(JSON.stringify({ kind: 'fatal', error: String(err instanceof Error ? err.stack : err) }) + '\n');
    process.exit(2);
  },
);
