import * as tf from '@tensorflow/tfjs-core';
import { GantryError, registerNestedGradientFixes } from '@gantry/core';
import { registerLazyFusedGradients } from './lazy-fused-gradients.js';
import { registerOffTapeLeakyReluGradient } from './leaky-relu-gradient.js';
import { nativeHintLine, tryNativeTensorflow } from './native/load.js';
import { registerEngineKernels, type EngineKernelSet } from './register-kernels.js';
import { startSimdConv } from './wasm-simd/simd-conv-node.js';
import { defaultWasmThreads, loadWasm } from './wasm-loader.js';
import { tryWebGpu } from './webgpu.js';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'webgpu';

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'];

export interface UseBackendOptions {
  /** Print nothing (default: one line saying which backend runs). */
  quiet?: boolean;
  /**
   * wasm: XNNPACK threads (default: `GANTRY_WASM_THREADS`, else the cores the load average leaves free, at most
   * 8); 1 loads the stock single-threaded build. Fixed by the first call that starts wasm in a process.
   * tensorflow: TF_NUM_INTRAOP_THREADS unless set (default: TensorFlow's, all cores); fixed when libtensorflow loads.
   */
  threads?: number;
  /**
   * `all` (default): Gantry's kernels and gradients. `required`: only what stock tfjs lacks to train at all (wasm's
   * missing Conv2DBackpropFilter, comparison-op gradients): the "before" configuration of ENGINE.md. Fixed by the
   * first call in a process.
   */
  kernels?: EngineKernelSet;
  /**
   * tensorflow only: compile the steps that run as recorded TensorFlow graphs (`captureSteps`, what `gantry train`
   * runs on tensorflow) with XLA's JIT (TensorFlow's auto-clustering, `TF_XLA_FLAGS`), which fuses chains of
   * element-wise ops. The toy MLP steps' graph runs take ~40% less time; the DCGAN's convolutions run slower
   * (ENGINE.md, "XLA"). The numbers differ from the unfused ops' in the last bits, and repeat run to run. Eager ops are
   * not compiled. Fixed when libtensorflow loads; asking for it with another backend is an error.
   */
  xla?: boolean;
}

export interface BackendChoice {
  /** The tfjs backend name now active: 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  name: string;
  /** What runs it, e.g. "XNNPACK, SIMD, 2 threads" or "libtensorflow (tfjs-node)". */
  detail: string;
}

type Attempt = { ok: true; choice: BackendChoice } | { ok: false; reason: string; absent: boolean };

async function tryTensorflow(threads?: number, kernels?: EngineKernelSet, xla?: boolean): Promise<Attempt> {
  const attempt = await tryNativeTensorflow(threads, kernels, xla);
  return attempt.ok ? { ok: true, choice: { name: 'tensorflow', detail: attempt.detail } } : attempt;
}

async function tryWasm(threads?: number): Promise<Attempt> {
  try {
    const choice = threads != null ? { threads } : await defaultWasmThreads();
    const loaded = await loadWasm(choice.threads, 'note' in choice ? choice.note : undefined);
    return { ok: true, choice: { name: 'wasm', detail: loaded.detail } };
  } catch (err) {
    return { ok: false, absent: false, reason: `wasm failed: ${String((err as Error).message).split('\n')[0]}` };
  }
}

async function tryCpu(): Promise<Attempt> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) return { ok: false, absent: false, reason: 'the cpu backend failed to initialise' };
  return { ok: true, choice: { name: 'cpu', detail: 'plain JavaScript, 1 thread' } };
}

async function tryGpu(): Promise<Attempt> {
  const attempt = await tryWebGpu();
  if (attempt.ok) return { ok: true, choice: { name: 'webgpu', detail: attempt.detail } };
  return { ok: false, absent: true, reason: attempt.reason };
}

let layersLoaded = false;

/**
 * Selects and starts a TensorFlow.js backend for training, then makes it train well:
 * registers Gantry's composite kernels (wasm, cpu), the gradients nested differentiation needs (core's fixes and the
 * engine's off-tape leaky-ReLU gradient), loads
 * @tensorflow/tfjs-layers (its import registers the gradient table) and turns on production mode (which also silences
 * tfjs's "install tfjs-node" banner). `auto` tries tfjs-node-gpu, tfjs-node, WebGPU (when an adapter exists), wasm, cpu.
 * Prints one line naming the backend unless `quiet`.
 */
export async function useBackend(name: BackendName = 'auto', opts: UseBackendOptions = {}): Promise<BackendChoice> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new GantryError(`Unknown backend "${String(name)}" (known: ${BACKEND_NAMES.join(', ')})`);
  }
  if (opts.threads != null && !(Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new GantryError(`useBackend: threads must be a positive integer, got ${String(opts.threads)}`);
  }
  if (opts.xla && name !== 'auto' && name !== 'tensorflow') {
    throw new GantryError(`useBackend: xla compiles TensorFlow graphs and needs the tensorflow backend, not ${name}`);
  }
  // Before any backend writes data: production mode silences tfjs-backend-cpu's "install tfjs-node" banner.
  tf.enableProdMode();
  if (!layersLoaded) {
    await import('@tensorflow/tfjs-layers');
    layersLoaded = true;
  }
  if (opts.kernels != null && opts.kernels !== 'all' && opts.kernels !== 'required') {
    throw new GantryError(`useBackend: kernels must be "all" or "required", got ${String(opts.kernels)}`);
  }
  registerNestedGradientFixes();
  if (opts.kernels !== 'required') {
    registerOffTapeLeakyReluGradient();
  }

  let attempt: Attempt;
  const skipped: string[] = [];
  if (name === 'auto') {
    attempt = await tryTensorflow(opts.threads, opts.kernels, opts.xla);
    if (!attempt.ok && !attempt.absent) skipped.push(attempt.reason);
    if (!attempt.ok) {
      attempt = await tryGpu();
      if (!attempt.ok && !attempt.absent) skipped.push(attempt.reason);
    }
    if (!attempt.ok) {
      attempt = await tryWasm(opts.threads);
      if (!attempt.ok) skipped.push(attempt.reason);
    }
    if (!attempt.ok) attempt = await tryCpu();
  } else if (name === 'tensorflow') {
    attempt = await tryTensorflow(opts.threads, opts.kernels, opts.xla);
  } else if (name === 'webgpu') {
    attempt = await tryGpu();
  } else if (name === 'wasm') {
    attempt = await tryWasm(opts.threads);
  } else {
    attempt = await tryCpu();
  }
  if (!attempt.ok) throw new GantryError(`Backend "${name}" is not available: ${attempt.reason}`);

  const choice = attempt.choice;
  if (opts.xla && choice.name !== 'tensorflow') {
    throw new GantryError(`useBackend: xla compiles TensorFlow graphs and needs the tensorflow backend, but ${choice.name} was chosen`);
  }
  if (choice.name === 'wasm' || choice.name === 'cpu') {
    const report = registerEngineKernels(choice.name, opts.kernels ?? 'all');
    const kernels = [...report.added, ...report.replaced];
    if (kernels.length > 0) choice.detail += `; Gantry kernels: ${kernels.join(', ')}`;
  }
  if (choice.name === 'wasm' && opts.kernels !== 'required' && process.env.GANTRY_WASM_FMA !== '0') {
    const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
    const note = await startSimdConv(tf.backend(), Math.max(1, getThreadsCount()));
    if (note) choice.detail += `; ${note}`;
  }
  // Last: it wraps each backend's fused kernels as registered now, Gantry's included.
  if (opts.kernels !== 'required') registerLazyFusedGradients();
  if (skipped.length > 0) choice.detail += ` (skipped: ${skipped.join('; ')})`;
  if (!opts.quiet) console.log(`gantry: backend ${choice.name} (${choice.detail})`);
  if (!opts.quiet && name === 'auto' && choice.name === 'wasm') console.log(nativeHintLine());
  return choice;
}
