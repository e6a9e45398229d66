import * as tf from '@tensorflow/tfjs-core';
import { GantryError, Trainer, definePlugin, nonSaturating } from '@gantry/core';
import { gradientPenalty, wgan } from '@gantry/loss-wgan';
import { useBackend, type BackendName } from './backend.js';
import { countNativeCalls } from './native/counters.js';
import { captureSteps, type StepCapture, type StepCaptureStats } from './native/graph-capture.js';
import type { EngineKernelSet } from './register-kernels.js';
import { REFERENCE_IMAGE_SHAPE, referenceDiscriminator, referenceGenerator } from './reference-models.js';

export type BenchLoss = 'non-saturating' | 'wgan-gp';
export const BENCH_LOSSES: readonly BenchLoss[] = ['non-saturating', 'wgan-gp'];

export interface BenchOptions {
  backend?: BackendName;
  batch?: number;
  losses?: BenchLoss[];
  /** Untimed steps first (kernel setup, XNNPACK operator creation, allocator warm-up). Default 2. */
  warmup?: number;
  /** Timed steps. Default 5. */
  steps?: number;
  /** Adds the per-kernel table of one extra (untimed) profiled step. */
  profile?: boolean;
  /** wasm: XNNPACK threads; tensorflow: intra-op threads (default: see useBackend). */
  threads?: number;
  /** `required` measures stock tfjs plus only the kernels it lacks (see useBackend). Default `all`. */
  kernels?: EngineKernelSet;
  /** Called with each result; default: print it as one JSON line. */
  onResult?: (result: BenchResult) => void;
  /** tensorflow backend: run the steps as recorded TensorFlow graphs (`captureSteps`), as `gantry train` does. Default false. */
  graph?: boolean;
  /** Print the backend line (default false: the bench prints JSON only). */
  verbose?: boolean;
}

export interface KernelProfileRow {
  kernel: string;
  total_ms: number;
  count: number;
}

export interface BenchResult {
  backend: string;
  batch: number;
  loss: BenchLoss;
  /** Median wall time of one D step + one G step, in milliseconds. */
  ms_per_step: number;
  /** Executed convolution and matrix-product FLOPs of one step / median step time, in GFLOP/s. */
  gflops: number;
  ms_best: number;
  /**
   * Median process CPU time (all threads, user + system) per step. On a machine shared with other work the wall time
   * stretches; for one thread this stays close to what an idle machine's wall time would be.
   */
  cpu_ms_per_step: number;
  steps: number;
  /** Backend details, e.g. "XNNPACK, SIMD, 2 threads; Gantry kernels: ...". */
  detail: string;
  /** GFLOP executed by conv/matmul kernels in one step (see ENGINE.md for the counting rule). */
  gflop_per_step: number;
  /** Kernels dispatched through the tfjs engine in one (profiled) step: a load-independent measure of overhead. */
  kernels_per_step: number;
  /**
   * tensorflow backend: TensorFlow eager ops per timed step, counted at tfjs-node's addon, so including those Gantry's
   * kernels issue directly (which tf.profile does not see), and tensors uploaded from JavaScript (scalars, data).
   */
  native_ops_per_step?: number;
  native_uploads_per_step?: number;
  profile?: KernelProfileRow[];
  /** With `graph`: how the steps ran (recorded, replayed as graphs, diverged). */
  graph?: StepCaptureStats;
}

const WGAN_GP_LAMBDA = 10;
const ADAM_LR = 2e-4;
const ADAM_BETA1 = 0.5;

function prod(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/**
 * Multiply-add count ×2 of one conv/matmul kernel call from its input and output shapes (NHWC):
 * Conv2D / FusedConv2D: out pixels × kernel volume (padding taps included, as in the usual nominal count);
 * Conv2DBackpropInput and Conv2DBackpropFilter: the same count as the forward conv they differentiate;
 * BatchMatMul / _FusedMatMul: batch · M · N · K. Other kernels count 0.
 */
export function kernelFlops(name: string, inputShapes: (number[] | null)[], outputShapes: number[][]): number {
  const out = outputShapes[0];
  switch (name) {
    case 'Conv2D':
    case 'FusedConv2D': {
      const filter = inputShapes[1]!;
      return 2 * prod(out) * filter[0] * filter[1] * filter[2];
    }
    case 'Conv2DBackpropInput': {
      // inputs: dy [B, OH, OW, Co], filter [KH, KW, Ci, Co]
      const [dy, filter] = [inputShapes[0]!, inputShapes[1]!];
      return 2 * prod(dy) * filter[0] * filter[1] * filter[2];
    }
    case 'Conv2DBackpropFilter': {
      // inputs: x, dy [B, OH, OW, Co]; output: filter [KH, KW, Ci, Co]
      const dy = inputShapes[1]!;
      return 2 * prod(dy) * out[0] * out[1] * out[2];
    }
    case 'BatchMatMul':
    case '_FusedMatMul': {
      const a = inputShapes[0]!;
      const M = out[out.length - 2];
      const K = a[a.length - 2] === M ? a[a.length - 1] : a[a.length - 2];
      return 2 * prod(out) * K;
    }
    default:
      return 0;
  }
}

/**
 * The benchmarked training: a `Trainer` on the reference models with the loss under test, fed one fixed random real
 * batch (data loading is not part of the step). WGAN-GP is `wgan()` + `gradientPenalty()` from @gantry/loss-wgan, the
 * implementation users train with.
 */
function buildTrainer(
  loss: BenchLoss,
  batch: number,
  timing: StepTiming,
  graph: boolean,
): { trainer: Trainer; dispose: () => void; capture?: StepCapture } {
  // The first step creates Adam's moments (other ops): the second is recorded, timed steps replay it.
  const capture = graph && tf.getBackend() === 'tensorflow' ? captureSteps({ warmup: 1 }) : undefined;
  const real = tf.randomUniform([batch, ...REFERENCE_IMAGE_SHAPE], -1, 1, 'float32', 7);
  const data = {
    // A clone shares the values (no copy); the trainer disposes each batch it is given.
    *[Symbol.iterator]() {
      for (;;) yield tf.clone(real);
    },
  };
  const trainer = new Trainer({
    generator: referenceGenerator(),
    discriminator: referenceDiscriminator(),
    data,
    steps: 0,
    batchSize: batch,
    optimizers: { generator: tf.train.adam(ADAM_LR, ADAM_BETA1), discriminator: tf.train.adam(ADAM_LR, ADAM_BETA1) },
    loss: loss === 'wgan-gp' ? wgan() : nonSaturating(),
    stepRunner: capture?.run,
    plugins: [
      ...(loss === 'wgan-gp' ? [gradientPenalty({ lambda: WGAN_GP_LAMBDA })] : []),
      definePlugin({
        name: 'bench-timer',
        hooks: { beforeStep: () => timing.start() },
        on: { 'step:end': () => timing.end() },
      }),
    ],
  });
  const dispose = () => {
    capture?.dispose();
    real.dispose();
    trainer.optimizers.generator.dispose();
    trainer.optimizers.discriminator.dispose();
    trainer.generator.dispose();
    trainer.discriminator.dispose();
  };
  return { trainer, dispose, capture };
}

/** Wall and process CPU time of each step, from the start of the step to its scalars' read (which waits for the device). */
class StepTiming {
  readonly wallMs: number[] = [];
  readonly cpuMs: number[] = [];
  private t0 = 0;
  private c0: NodeJS.CpuUsage = { user: 0, system: 0 };

  start(): void {
    this.c0 = process.cpuUsage();
    this.t0 = performance.now();
  }

  end(): void {
    this.wallMs.push(performance.now() - this.t0);
    const c = process.cpuUsage(this.c0);
    this.cpuMs.push((c.user + c.system) / 1000);
  }
}

/** Runs `n` more steps of `trainer`. */
async function trainSteps(trainer: Trainer, n: number): Promise<void> {
  trainer.totalSteps += n;
  await trainer.train();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function profileStep(trainer: Trainer): Promise<{ rows: KernelProfileRow[]; flops: number; kernels: number }> {
  const info = await tf.profile(async () => {
    await trainSteps(trainer, 1);
    return [];
  });
  const byName = new Map<string, KernelProfileRow>();
  let flops = 0;
  let kernels = 0;
  for (const k of info.kernels) {
    // tf.profile also lists op scopes ("fusedConv2d__op") whose time is their kernels' time: skip the duplicates.
    if (k.name.endsWith('__op')) continue;
    kernels++;
    const ms = await k.kernelTimeMs;
    const row = byName.get(k.name) ?? { kernel: k.name, total_ms: 0, count: 0 };
    row.total_ms += typeof ms === 'number' ? ms : 0;
    row.count += 1;
    byName.set(k.name, row);
    flops += kernelFlops(k.name, k.inputShapes, k.outputShapes);
  }
  const rows = [...byName.values()]
    .map((r) => ({ ...r, total_ms: Math.round(r.total_ms * 10) / 10 }))
    .sort((a, b) => b.total_ms - a.total_ms);
  return { rows, flops, kernels };
}

/**
 * Times training steps (one discriminator update + one generator update) of the reference DCGAN-MNIST models
 * (Adam 2e-4, β1 0.5) run by a `Trainer`, for each loss. WGAN-GP adds @gantry/loss-wgan's λ = 10 gradient penalty on
 * random interpolates (one ε per sample), a nested gradient inside the critic's gradient computation. Real images are
 * a fixed random batch: data loading is not part of the step.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult[]> {
  const batch = options.batch ?? 64;
  const losses = options.losses ?? [...BENCH_LOSSES];
  const warmup = options.warmup ?? 2;
  const steps = options.steps ?? 5;
  if (!Number.isInteger(batch) || batch < 1) throw new GantryError(`bench: batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(steps) || steps < 1) throw new GantryError(`bench: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new GantryError(`bench: warmup must be >= 0, got ${warmup}`);
  for (const l of losses) {
    if (!BENCH_LOSSES.includes(l)) throw new GantryError(`bench: unknown loss "${l}" (known: ${BENCH_LOSSES.join(', ')})`);
  }
  const choice = await useBackend(options.backend ?? 'auto', {
    quiet: !options.verbose,
    threads: options.threads,
    kernels: options.kernels,
  });
  // buildTrainer records the second step: timing must start with a replayed one.
  if (options.graph && choice.name === 'tensorflow' && warmup < 2) throw new GantryError(`bench: graph steps need warmup >= 2, got ${warmup}`);
  const emit = options.onResult ?? ((r: BenchResult) => console.log(JSON.stringify(r)));
  const results: BenchResult[] = [];
  for (const loss of losses) {
    const timing = new StepTiming();
    const { trainer, dispose, capture } = buildTrainer(loss, batch, timing, options.graph ?? false);
    try {
      await trainSteps(trainer, warmup);
      const counter = countNativeCalls();
      await trainSteps(trainer, steps);
      const native = counter?.stop();
      const times = timing.wallMs.slice(warmup);
      const cpuTimes = timing.cpuMs.slice(warmup);
      const { rows, flops, kernels } = await profileStep(trainer);
      const ms = median(times);
      const result: BenchResult = {
        backend: choice.name,
        batch,
        loss,
        ms_per_step: Math.round(ms * 10) / 10,
        gflops: Math.round((flops / 1e9 / (ms / 1000)) * 100) / 100,
        ms_best: Math.round(Math.min(...times) * 10) / 10,
        cpu_ms_per_step: Math.round(median(cpuTimes) * 10) / 10,
        steps,
        detail: choice.detail,
        gflop_per_step: Math.round((flops / 1e9) * 1000) / 1000,
        kernels_per_step: kernels,
      };
      if (native) {
        result.native_ops_per_step = Math.round(native.ops / steps);
        result.native_uploads_per_step = Math.round(native.uploads / steps);
      }
      if (capture) result.graph = { ...capture.stats };
      if (options.profile) result.profile = rows;
      emit(result);
      results.push(result);
    } finally {
      dispose();
    }
  }
  return results;
}
