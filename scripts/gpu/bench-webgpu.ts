/**
 * WebGPU (Dawn) benchmark of the reference DCGAN-MNIST step, bundled by scripts/gpu/build.sh and run on the GPU
 * machine by scripts/gpu/device.sh. One JSON line per measurement on stdout.
 *
 *   node .gpu/bench.mjs --variant stock|gantry [--flags K=V,...] [--losses nonsat,wgangp] [--batches 64,256,1024]
 *        [--steps 20] [--warmup 3] [--trace] [--profile] [--sync] [--fallback] [--dawn backend=null] [--gpu-rng]
 *        [--skip upload,layouts,filterGrad,adam,gradients,rng]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { registerNestedGradientFixes } from '@gantry/core';
import { initWebGpu, registerOffTapeLeakyReluGradient, type WebGpuPart } from '@gantry/engine';
import { makeRig, type BenchLoss } from './models.js';

interface Args {
  variant: string;
  flags: Record<string, number | boolean>;
  losses: BenchLoss[];
  batches: number[];
  steps: number;
  warmup: number;
  trace: boolean;
  profile: boolean;
  sync: boolean;
  fallback: boolean;
  kernels?: boolean;
  gpuRng: boolean;
  skip: WebGpuPart[];
  /** Dawn options, e.g. backend=null: no GPU work at all, so a step costs what the host side costs. */
  dawn: string[];
}

function parseArgs(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const flags: Record<string, number | boolean> = {};
  for (const kv of (get('flags') ?? '').split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    flags[k] = v === 'true' ? true : v === 'false' ? false : Number(v);
  }
  const kernels = get('kernels');
  return {
    variant: get('variant') ?? 'gantry',
    flags,
    losses: (get('losses') ?? 'nonsat,wgangp').split(',') as BenchLoss[],
    batches: (get('batches') ?? '64,256,1024').split(',').map(Number),
    steps: Number(get('steps') ?? 20),
    warmup: Number(get('warmup') ?? 3),
    trace: argv.includes('--trace'),
    profile: argv.includes('--profile'),
    sync: argv.includes('--sync'),
    fallback: argv.includes('--fallback'),
    kernels: kernels === undefined ? undefined : kernels === 'true',
    dawn: (get('dawn') ?? '').split(',').filter(Boolean),
    gpuRng: argv.includes('--gpu-rng'),
    skip: (get('skip') ?? '').split(',').filter(Boolean) as WebGpuPart[],
  };
}

/** Counts and times calls into Dawn (per method), by wrapping the prototypes of the WebGPU globals. */
class DawnTrace {
  counts = new Map<string, number>();
  ms = new Map<string, number>();

  install(): void {
    const g = globalThis as Record<string, unknown>;
    const { counts, ms } = this;
    const wrap = (cls: string, methods: string[]) => {
      const ctor = g[cls] as { prototype: Record<string, unknown> } | undefined;
      if (!ctor) return;
      for (const m of methods) {
        const original = ctor.prototype[m];
        if (typeof original !== 'function') continue;
        const key = `${cls}.${m}`;
        ctor.prototype[m] = function (this: unknown, ...args: unknown[]) {
          const t0 = performance.now();
          try {
            return (original as (...a: unknown[]) => unknown).apply(this, args);
          } finally {
            counts.set(key, (counts.get(key) ?? 0) + 1);
            ms.set(key, (ms.get(key) ?? 0) + performance.now() - t0);
          }
        };
      }
    };
    wrap('GPUDevice', ['createBindGroup', 'createBuffer', 'createComputePipeline', 'createShaderModule', 'createCommandEncoder']);
    wrap('GPUQueue', ['submit', 'writeBuffer']);
    wrap('GPUBuffer', ['mapAsync', 'getMappedRange', 'unmap', 'destroy']);
    wrap('GPUComputePipeline', ['getBindGroupLayout']);
    wrap('GPUCommandEncoder', ['beginComputePass', 'copyBufferToBuffer', 'finish']);
    wrap('GPUComputePassEncoder', ['setPipeline', 'setBindGroup', 'dispatchWorkgroups', 'end']);
  }

  reset(): void {
    this.counts.clear();
    this.ms.clear();
  }

  summary(steps: number): Record<string, { perStep: number; usPerCall: number }> {
    const out: Record<string, { perStep: number; usPerCall: number }> = {};
    for (const [k, n] of [...this.counts.entries()].sort((a, b) => b[1] - a[1])) {
      out[k] = { perStep: +(n / steps).toFixed(1), usPerCall: +((this.ms.get(k)! * 1000) / n).toFixed(1) };
    }
    return out;
  }
}

function emit(record: object): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

async function measure(args: Args, loss: BenchLoss, batch: number, trace: DawnTrace | undefined): Promise<void> {
  const rig = makeRig(loss, batch, { gpuRng: args.gpuRng });
  try {
    for (let i = 0; i < args.warmup; i++) {
      const l = rig.step();
      await l.data();
      l.dispose();
    }
    const tensorsBefore = tf.memory().numTensors;
    trace?.reset();
    let last: tf.Scalar | undefined;
    let issueMs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < args.steps; i++) {
      const ti = performance.now();
      last?.dispose();
      last = rig.step();
      issueMs += performance.now() - ti;
      if (args.sync) await last.data();
    }
    const value = (await last!.data())[0];
    const total = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    last!.dispose();
    const msPerStep = total / args.steps;
    emit({
      kind: 'step',
      variant: args.variant,
      flags: args.flags,
      gpu_rng: args.gpuRng,
      skip: args.skip,
      loss,
      batch,
      steps: args.steps,
      sync: args.sync,
      ms_per_step: +msPerStep.toFixed(2),
      issue_ms_per_step: +(issueMs / args.steps).toFixed(2),
      // Host CPU time of the whole process (all threads) per step: robust to a loaded machine, unlike wall time.
      cpu_ms_per_step: +((cpu.user + cpu.system) / 1000 / args.steps).toFixed(2),
      images_per_s: Math.round((batch * 1000) / msPerStep),
      d_loss: value,
      tensor_leak: tf.memory().numTensors - tensorsBefore,
      ...(trace ? { dawn: trace.summary(args.steps) } : {}),
    });
    if (args.profile) {
      const profile = await tf.profile(() => {
        const l = rig.step();
        l.dispose();
      });
      const byKernel = new Map<string, { n: number; ms: number }>();
      for (const k of profile.kernels) {
        const entry = byKernel.get(k.name) ?? { n: 0, ms: 0 };
        entry.n += 1;
        entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        byKernel.set(k.name, entry);
      }
      const kernels = [...byKernel.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([name, e]) => ({ name, n: e.n, ms: +e.ms.toFixed(3) }));
      emit({
        kind: 'profile',
        variant: args.variant,
        loss,
        batch,
        kernel_calls: profile.kernels.length,
        kernel_ms: +kernels.reduce((s, k) => s + k.ms, 0).toFixed(3),
        kernels,
      });
    }
  } finally {
    rig.dispose();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const info = await initWebGpu({
    stock: args.variant === 'stock',
    flags: args.flags,
    kernels: args.kernels,
    allowFallbackAdapter: args.fallback,
    timestampQuery: args.profile,
    dawnOptions: args.dawn,
    skip: args.skip,
  });
  registerNestedGradientFixes();
  registerOffTapeLeakyReluGradient();
  emit({ kind: 'init', variant: args.variant, ms: Math.round(performance.now() - t0), ...info, tfjs: tf.version_core });
  let trace: DawnTrace | undefined;
  if (args.trace) {
    trace = new DawnTrace();
    trace.install();
  }
  for (const loss of args.losses) {
    for (const batch of args.batches) {
      try {
        await measure(args, loss, batch, trace);
      } catch (err) {
        emit({ kind: 'error', variant: args.variant, loss, batch, error: String(err instanceof Error ? err.stack : err) });
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    emit({ kind: 'fatal', error: String(err instanceof Error ? err.stack : err) });
    process.exit(1);
  },
);
