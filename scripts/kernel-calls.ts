/**
 * The convolution and matrix-product kernels of one profiled reference step, as the step dispatches them through the
 * tfjs engine (Gantry's composite kernels run below it, so each composite counts once, under its own name), with
 * their input shapes, attributes, FLOPs (the bench's `kernelFlops`) and whether a gradient tape was recording.
 * Shared by `op-tally.ts` (the listing) and `wasm-ceiling.ts` (which replays each call alone).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BENCH_LOSSES, kernelFlops, runBench, type BackendName, type BenchLoss, type BenchResult } from '@gantry/engine';

export const HEAVY_KERNELS = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', '_FusedMatMul'];

export interface KernelCall {
  kernel: string;
  /** Input names and shapes in the order the op passed them. */
  inputs: [string, number[]][];
  attrs: tf.NamedAttrMap;
  output: number[];
  flops: number;
  /** Nesting depth of gradient tapes at the call (0: no tape records it). */
  tapeDepth: number;
  /** Process CPU ms of the call within the step. */
  cpuMs: number;
}

/** Every kernel of the profiled step by name: calls and process CPU ms (heavy ones included). */
export type KernelCpu = Map<string, { calls: number; cpuMs: number }>;

/** This process's CPU time (user + system) so far, in ms. */
export const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

type RunKernel = (name: string, inputs: tf.NamedTensorMap, attrs?: tf.NamedAttrMap) => tf.Tensor | tf.Tensor[];

/**
 * Runs `runBench` for one loss with a profiled step and returns the bench result together with every heavy kernel call
 * of that profiled step, the CPU time of all its kernels by name and of the step from its first kernel to the end of its
 * last (the engine's `runKernel` is wrapped; it records while `tf.profile` is on, i.e. during exactly that step). A
 * kernel's CPU time includes tfjs's bookkeeping of it.
 */
export async function profiledKernelCalls(
  backend: BackendName,
  loss: BenchLoss,
  options: { threads?: number; steps?: number; warmup?: number } = {},
): Promise<{ result: BenchResult; calls: KernelCall[]; byKernel: KernelCpu; stepCpuMs: number }> {
  if (!BENCH_LOSSES.includes(loss)) throw new Error(`unknown loss ${loss}`);
  const engine = tf.engine() as unknown as { runKernel: RunKernel; state: { profiling: boolean; gradientDepth: number } };
  const calls: KernelCall[] = [];
  const byKernel: KernelCpu = new Map();
  let [first, last] = [NaN, NaN];
  const inner = engine.runKernel;
  engine.runKernel = function (this: unknown, name, inputs, attrs = {}) {
    const c0 = cpuNow();
    const out = inner.call(this, name, inputs, attrs);
    const c1 = cpuNow();
    const cpuMs = c1 - c0;
    if (!engine.state.profiling) return out;
    if (Number.isNaN(first)) first = c0;
    last = c1;
    const row = byKernel.get(name) ?? { calls: 0, cpuMs: 0 };
    row.calls++;
    row.cpuMs += cpuMs;
    byKernel.set(name, row);
    if (HEAVY_KERNELS.includes(name)) {
      const named = Object.entries(inputs).filter(([, t]) => t != null) as [string, tf.Tensor][];
      const output = (Array.isArray(out) ? out[0] : out).shape;
      calls.push({
        kernel: name,
        inputs: named.map(([k, t]) => [k, t.shape]),
        attrs: { ...attrs },
        output,
        flops: kernelFlops(name, named.map(([, t]) => t.shape), [output]),
        tapeDepth: engine.state.gradientDepth,
        cpuMs,
      });
    }
    return out;
  };
  try {
    const [result] = await runBench({ backend, threads: options.threads ?? 1, losses: [loss], steps: options.steps ?? 1, warmup: options.warmup ?? 2, profile: true, onResult: () => {} });
    return { result, calls, byKernel, stepCpuMs: last - first };
  } finally {
    engine.runKernel = inner;
  }
}

const FORMAT_ATTRS = ['strides', 'pad', 'transposeA', 'transposeB', 'activation'];

/** One line per call: kernel, shapes, the attributes that decide the work, MFLOP. */
export function describeCall(c: KernelCall): string {
  const shapes = c.inputs.map(([k, s]) => `${k} [${s}]`).join(', ');
  const attrs = FORMAT_ATTRS.filter((a) => c.attrs[a] !== undefined && c.attrs[a] !== false && c.attrs[a] !== null).map((a) => `${a} ${JSON.stringify(c.attrs[a])}`);
  return `${c.kernel}(${shapes}) -> [${c.output}]${attrs.length ? ` {${attrs.join(', ')}}` : ''} ${(c.flops / 1e6).toFixed(1)} MFLOP`;
}
