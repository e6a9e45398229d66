/**
 * How fast can the reference WGAN-GP step run on wasm, and where is the ceiling? Measured on one thread, in process CPU
 * time (so the numbers hold on a shared machine):
 *
 *  1. the peak f32 throughput of WebAssembly SIMD128 in this Node: eight independent acc += a · b chains in registers,
 *     as f32x4.mul + f32x4.add (what SIMD128 has) and as relaxed SIMD's f32x4.relaxed_madd (one FMA; behind a flag in
 *     Node 20), i.e. the ceiling of any kernel and what an FMA build could raise it to. The modules are assembled
 *     below, byte by byte (nothing binary is committed);
 *  2. every convolution and matrix-product kernel of one profiled step of each loss (the engine's own kernels, as the
 *     step dispatches them: `kernel-calls.ts`), each signature replayed alone at its exact shapes and attributes,
 *     interleaved round-robin, `--reps` calls each: CPU ms per call and GFLOP/s (FLOPs by the bench's `kernelFlops`);
 *  3. the profiled step itself: CPU of its conv/matmul kernels, of its other kernels and of the JavaScript between
 *     kernels (`kernel-calls.ts`), and the median CPU of `--steps` timed steps (`runBench`).
 *
 * From these: the lower bounds of the 2-thread step (see ENGINE.md, "wasm: the ceiling").
 *
 *   nice -n 19 npx tsx --conditions=@gantry/source scripts/wasm-ceiling.ts [--reps 30] [--steps 8] [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type { BenchLoss } from '@gantry/engine';
import { uleb } from '../packages/engine/src/wasm-simd/assembler.js';
import { HEAVY_KERNELS, cpuNow, describeCall, profiledKernelCalls, type KernelCall, type KernelCpu } from './kernel-calls.js';

// Relaxed SIMD is behind a flag in Node 20's V8 (11.3); it must be set before the first module is compiled.
setFlagsFromString('--experimental-wasm-relaxed-simd');

const opts = new Command()
  .option('--reps <n>', 'timed calls per kernel signature', '30')
  .option('--steps <n>', 'timed 1-thread steps per loss', '8')
  .option('--json <file>', 'also write all numbers as JSON')
  .option('--peaks-only', 'only part 1 (the SIMD128 throughput)')
  .option('--threads <n>', 'XNNPACK threads for parts 2 and 3 (the bounds assume 1)', '1')
  .parse()
  .opts<{ reps: string; steps: string; json?: string; peaksOnly?: boolean; threads: string }>();
const reps = Number(opts.reps);
const threads = Number(opts.threads);

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

// ---------------------------------------------------------------- 1. SIMD128 peak

const f32 = (x: number): number[] => [...new Uint8Array(new Float32Array([x]).buffer)];
const sized = (bytes: number[]): number[] => [...uleb(bytes.length), ...bytes];
const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const OP = {
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Sub: 0x6b,
  f32Const: 0x43,
  brIf: 0x0d,
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  void: 0x40,
  v128: 0x7b,
  i32: 0x7f,
  f32: 0x7d,
};
const F32X4_SPLAT = 0x13;
const F32X4_EXTRACT_LANE = 0x1f;
const F32X4_ADD = 0xe4;
const F32X4_MUL = 0xe6;
const F32X4_RELAXED_MADD = 0x105;

/** A module exporting `run(n: i32) -> f32` with the given locals (after the i32 parameter) and body. */
function assemble(locals: [count: number, type: number][], body: number[]): WebAssembly.Module {
  const func = [...uleb(locals.length), ...locals.flatMap(([n, t]) => [...uleb(n), t]), ...body, OP.end];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, ...sized([1, 0x60, 1, OP.i32, 1, OP.f32]), // type: (i32) -> f32
    0x03, ...sized([1, 0]), // one function of type 0
    0x07, ...sized([1, ...sized([...Buffer.from('run')]), 0x00, 0]), // export "run" = func 0
    0x0a, ...sized([1, ...sized(func)]),
  ];
  return new WebAssembly.Module(new Uint8Array(bytes));
}

/** acc += x · y with two instructions (mul, add) or one (relaxed_madd), operands on the stack as x, y, acc. */
const multiplyAdd = (fused: boolean, x: number[], y: number[], acc: number): number[] =>
  fused
    ? [...x, ...y, OP.localGet, acc, ...simd(F32X4_RELAXED_MADD), OP.localSet, acc]
    : [OP.localGet, acc, ...x, ...y, ...simd(F32X4_MUL), ...simd(F32X4_ADD), OP.localSet, acc];

/** `n` iterations of `inner`, counting local 0 down. */
const countedLoop = (inner: number[]): number[] => [
  OP.block, OP.void, OP.loop, OP.void,
  ...inner,
  OP.localGet, 0, OP.i32Const, 1, OP.i32Sub, OP.localTee, 0, OP.brIf, 0,
  OP.end, OP.end,
];

/** Sum of the accumulators' lane 0 (so nothing is dead code). */
const reduceAccumulators = (first: number, count: number): number[] => [
  OP.localGet, first,
  ...Array.from({ length: count - 1 }, (_, j) => [OP.localGet, first + 1 + j, ...simd(F32X4_ADD)]).flat(),
  ...simd(F32X4_EXTRACT_LANE), 0,
];

/** Register-only kernel: 8 independent accumulator chains acc_j += a · b_(j mod 4), unrolled 4×: 256 FLOP per iteration. */
function registerKernel(fused: boolean): { module: WebAssembly.Module; flopsPerIteration: number } {
  const A = 1;
  const B = 2; // 4 locals
  const ACC = 6; // 8 locals
  const body: number[] = [];
  const splat = (local: number, x: number) => body.push(OP.f32Const, ...f32(x), ...simd(F32X4_SPLAT), OP.localSet, local);
  splat(A, 0.999);
  for (let k = 0; k < 4; k++) splat(B + k, 1e-3 * (k + 1));
  const inner: number[] = [];
  for (let u = 0; u < 4; u++) for (let j = 0; j < 8; j++) inner.push(...multiplyAdd(fused, [OP.localGet, A], [OP.localGet, B + (j % 4)], ACC + j));
  body.push(...countedLoop(inner), ...reduceAccumulators(ACC, 8));
  return { module: assemble([[13, OP.v128]], body), flopsPerIteration: 4 * 8 * 8 };
}

interface PeakRow {
  kernel: string;
  gflops: number;
}

function measurePeak(name: string, build: () => { module: WebAssembly.Module; flopsPerIteration: number }): PeakRow | undefined {
  let built;
  try {
    built = build();
  } catch (error) {
    console.log(`  ${name}: not available in this Node (${(error as Error).message.split('\n')[0]})`);
    return undefined;
  }
  const run = (new WebAssembly.Instance(built.module).exports as { run: (n: number) => number }).run;
  // ~20 ms per timed call; best of 25 (the call the other processes disturbed least).
  const n = Math.round(1e9 / built.flopsPerIteration);
  run(Math.max(1, n >> 4));
  let best = Infinity;
  for (let r = 0; r < 25; r++) {
    const c0 = cpuNow();
    run(n);
    best = Math.min(best, cpuNow() - c0);
  }
  return { kernel: name, gflops: (n * built.flopsPerIteration) / best / 1e6 };
}

console.log('1. WebAssembly SIMD128 f32 throughput, 1 thread (best of 25 calls of ~1 GFLOP, process CPU):');
const peaks: PeakRow[] = [];
for (const [name, build] of [
  ['f32x4.mul + f32x4.add', () => registerKernel(false)],
  ['f32x4.relaxed_madd (FMA)', () => registerKernel(true)],
] as const) {
  const row = measurePeak(name, build);
  if (row) {
    peaks.push(row);
    console.log(`  ${name.padEnd(36)} ${row.gflops.toFixed(1)} GFLOP/s`);
  }
}

// ---------------------------------------------------------------- 2 + 3. the step's kernels and the step
if (opts.peaksOnly) process.exit(0);

const LOSSES: BenchLoss[] = ['wgan-gp', 'non-saturating'];
const steps: Record<string, { cpuMs: number; calls: KernelCall[]; gflop: number; byKernel: KernelCpu; profiledCpuMs: number }> = {};
for (const loss of LOSSES) {
  const { result, calls, byKernel, stepCpuMs } = await profiledKernelCalls('wasm', loss, { threads, steps: Number(opts.steps), warmup: 2 });
  steps[loss] = { cpuMs: result.cpu_ms_per_step, calls, gflop: result.gflop_per_step, byKernel, profiledCpuMs: stepCpuMs };
}
if (!tf.getBackend().startsWith('wasm')) throw new Error(`expected the wasm backend, got ${tf.getBackend()}`);

interface Signature {
  key: string;
  call: KernelCall;
  perStep: Record<string, number>;
  /** CPU ms of this signature's calls inside the profiled WGAN-GP step (or non-saturating, if it has none there). */
  inStep: number[];
  times: number[];
  wall: number[];
}
const signatures = new Map<string, Signature>();
for (const loss of LOSSES) {
  for (const call of steps[loss].calls) {
    const key = describeCall(call);
    const sig = signatures.get(key) ?? { key, call, perStep: {}, inStep: [], times: [], wall: [] };
    sig.perStep[loss] = (sig.perStep[loss] ?? 0) + 1;
    if (loss === 'wgan-gp' || sig.perStep['wgan-gp'] === undefined) sig.inStep.push(call.cpuMs);
    signatures.set(key, sig);
  }
}

// Replay: fixed random inputs per signature (a forward conv's filter stays the same tensor, so XNNPACK packs it once:
// the optimistic case, as for a lower bound), round-robin over the signatures, one warm-up round.
const engine = tf.engine() as unknown as { runKernel: (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap) => tf.Tensor };
const inputsOf = new Map<Signature, tf.NamedTensorMap>();
for (const sig of signatures.values()) {
  inputsOf.set(sig, Object.fromEntries(sig.call.inputs.map(([name, shape], i) => [name, tf.randomNormal(shape, 0, 1, 'float32', i + 1)])));
}
for (let round = -1; round < reps; round++) {
  for (const sig of signatures.values()) {
    const [c0, w0] = [cpuNow(), performance.now()];
    const out = engine.runKernel(sig.call.kernel, inputsOf.get(sig)!, sig.call.attrs);
    const [t, w] = [cpuNow() - c0, performance.now() - w0];
    out.dispose();
    if (round >= 0) {
      sig.times.push(t);
      sig.wall.push(w);
    }
  }
}
for (const inputs of inputsOf.values()) tf.dispose(Object.values(inputs));

console.log(`\n2. The step's convolution and matrix-product kernels on wasm (${threads} thread${threads > 1 ? 's' : ''}), ${reps} calls each, CPU ms per call:`);
console.log('  calls per step (WGAN-GP / non-sat) | kernel | alone: min / q1 / median ms (min wall ms) | in the profiled step: mean ms | GFLOP/s alone at min');
const rows = [...signatures.values()].map((sig) => {
  const [min, q1, med, minWall] = [Math.min(...sig.times), quantile(sig.times, 0.25), quantile(sig.times, 0.5), Math.min(...sig.wall)];
  const gflops = sig.call.flops / 1e6 / min;
  const inStep = sig.inStep.reduce((a, b) => a + b, 0) / sig.inStep.length;
  console.log(
    `  ${String(sig.perStep['wgan-gp'] ?? 0).padStart(2)} / ${String(sig.perStep['non-saturating'] ?? 0).padStart(2)} | ${sig.key} | ` +
      `${min.toFixed(2)} / ${q1.toFixed(2)} / ${med.toFixed(2)} (${minWall.toFixed(2)}) | ${inStep.toFixed(2)} | ${gflops.toFixed(1)}`,
  );
  return { key: sig.key, kernel: sig.call.kernel, perStep: sig.perStep, mflop: sig.call.flops / 1e6, min, q1, median: med, minWall, inStep, gflops };
});

const registerPeak = peaks[0]?.gflops ?? NaN;
const fmaPeak = peaks[1]?.gflops ?? NaN;
console.log(`\n3. Per step (${threads} thread${threads > 1 ? 's' : ''}) and the bounds of the 2-thread step${threads > 1 ? ' (they assume a 1-thread run)' : ''}:`);
const summary = LOSSES.map((loss) => {
  const s = steps[loss];
  // The least disturbed call of each signature: the kernels' cost on a quiet core (a lower bound's input).
  const kernelMs = rows.reduce((sum, r) => sum + (r.perStep[loss] ?? 0) * r.min, 0);
  const kernelsInStep = s.calls.reduce((sum, c) => sum + c.cpuMs, 0);
  const others = [...s.byKernel].filter(([name]) => !HEAVY_KERNELS.includes(name));
  const otherKernels = others.reduce((sum, [, r]) => sum + r.cpuMs, 0);
  const outsideKernels = s.profiledCpuMs - kernelsInStep - otherKernels;
  // What runs beside the conv/matmul kernels, taken from the profiled step (the other kernels and the JavaScript
  // between kernels): at 2 threads most of it stays on the main thread. Not step CPU − kernel CPU: on a loaded machine
  // the kernels inside the step run slower than their least disturbed calls, and that difference is the load's.
  const rest = otherKernels + outsideKernels;
  const line = {
    loss,
    threads,
    gflop: s.gflop,
    step_cpu_ms_median: s.cpuMs,
    profiled_step_cpu_ms: s.profiledCpuMs,
    conv_matmul_cpu_ms_in_profiled_step: kernelsInStep,
    other_kernels_cpu_ms_in_profiled_step: otherKernels,
    outside_kernels_cpu_ms_in_profiled_step: outsideKernels,
    other_kernels: Object.fromEntries(others.sort((a, b) => b[1].cpuMs - a[1].cpuMs).map(([n, r]) => [n, { calls: r.calls, cpu_ms: Math.round(r.cpuMs * 100) / 100 }])),
    conv_matmul_cpu_ms_alone: kernelMs,
    conv_matmul_gflops_alone: s.gflop / (kernelMs / 1000),
    conv_matmul_min_wall_ms_alone: rows.reduce((sum, r) => sum + (r.perStep[loss] ?? 0) * r.minWall, 0),
    // Lower bounds of the 2-thread wall time, each assuming a perfect split of the kernels over both cores.
    bound_kernels_alone_ms: kernelMs / 2,
    bound_kernels_plus_rest_ms: kernelMs / 2 + rest,
    bound_simd128_peak_ms: (s.gflop / registerPeak / 2) * 1000,
    bound_fma_peak_ms: (s.gflop / fmaPeak / 2) * 1000,
  };
  console.log(
    `  ${loss}: ${s.gflop} GFLOP per step. Conv/matmul kernels alone ${kernelMs.toFixed(0)} ms CPU (${line.conv_matmul_gflops_alone.toFixed(1)} GFLOP/s).\n` +
      `    The profiled step, first kernel to last: ${s.profiledCpuMs.toFixed(0)} ms CPU = conv/matmul kernels ${kernelsInStep.toFixed(0)} ms + ` +
      `the other ${others.length} kernels ${otherKernels.toFixed(0)} ms ` +
      `(${Object.entries(line.other_kernels).slice(0, 8).map(([n, r]) => `${n} ${r.cpu_ms.toFixed(1)}/${r.calls}`).join(', ')}) + ` +
      `JavaScript between kernels ${outsideKernels.toFixed(0)} ms. Timed steps: median ${s.cpuMs.toFixed(0)} ms CPU.\n` +
      `    2-thread lower bounds: every FLOP at the SIMD128 peak ${line.bound_simd128_peak_ms.toFixed(0)} ms (FMA peak ${line.bound_fma_peak_ms.toFixed(0)} ms); ` +
      `the kernels split perfectly and nothing else ${line.bound_kernels_alone_ms.toFixed(0)} ms; ` +
      `+ the other kernels and the JavaScript on one thread ${line.bound_kernels_plus_rest_ms.toFixed(0)} ms`,
  );
  return line;
});
if (opts.json) writeFileSync(opts.json, JSON.stringify({ peaks, kernels: rows, summary }, null, 2));
