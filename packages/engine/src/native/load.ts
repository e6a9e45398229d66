import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { canResolve, isModuleNotFound, nodeRequire } from '../node-require.js';
import type { EngineKernelSet } from '../register-kernels.js';
import { registerNativeKernels } from './kernels.js';
import { withTensorflowStderrFiltered } from './stderr-capture.js';
import {
  NATIVE_MANIFEST,
  NATIVE_PACKAGES,
  TFJS_CORE_HANDOFF,
  nativeInstallDir,
  type NativeFlavour,
  type NativeManifest,
} from './paths.js';

export type NativeAttempt =
  | { ok: true; detail: string }
  | { ok: false; reason: string; absent: boolean };

export const SETUP_HINT = 'npx gantry setup tensorflow';

/**
 * The reference WGAN-GP step (batch 64, 2 threads each) on the tensorflow backend against wasm, from the README's
 * `gantry bench` run on the idle 2-core development machine (346.2 vs 124.2 ms wall with graph steps and wasm's FMA
 * convolution, 2026-12-02 07:48 UTC: 2.79×, rounded down; 3.06× in the run after). Printed when `auto` lands on wasm.
 */
export const NATIVE_SPEEDUP_OVER_WASM = 2.7;

/** The one line `useBackend('auto')` prints when it chose wasm: how much faster native TensorFlow is and how to get it. */
export function nativeHintLine(): string {
  return `gantry: native TensorFlow runs the WGAN-GP step ${NATIVE_SPEEDUP_OVER_WASM}× faster than wasm on a 2-core CPU (gantry bench, 2 threads each); set it up with: ${SETUP_HINT}`;
}

interface TfjsNodeBinding {
  TF_Version: string;
}

let loadedDetail: string | undefined;

/** TensorFlow's auto-clustering: graphs (not eager ops) compiled by XLA's JIT, on the CPU too. */
export const XLA_FLAGS = ['--tf_xla_auto_jit=2', '--tf_xla_cpu_global_jit'];

/** Whether the loaded libtensorflow compiles graphs with XLA (undefined until it loads in this process). */
let xlaAtLoad: boolean | undefined;

/**
 * Threads libtensorflow's pools get unless the user set TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, and XLA's
 * auto-clustering when asked for (added to the user's TF_XLA_FLAGS).
 */
function setTensorflowEnvironment(threads: number | undefined, xla: boolean): void {
  // Before the addon loads: TensorFlow reads these once, when it creates its thread pools and first builds a graph.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  if (threads != null) process.env.TF_NUM_INTRAOP_THREADS ??= String(threads);
  // Eager ops run one after another on the calling thread; a second pool only competes for the cores.
  process.env.TF_NUM_INTEROP_THREADS ??= '1';
  if (xla) {
    const own = (process.env.TF_XLA_FLAGS ?? '').split(/\s+/).filter(Boolean);
    const missing = XLA_FLAGS.filter((flag) => !own.some((f) => f.startsWith(flag.split('=')[0])));
    process.env.TF_XLA_FLAGS = [...own, ...missing].join(' ');
  }
  xlaAtLoad = xla;
}

function readManifest(dir: string): NativeManifest | undefined {
  const file = join(dir, NATIVE_MANIFEST);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as NativeManifest;
}

/**
 * The folder of the tfjs-node(-gpu) package the tensorflow backend was loaded from: on the global object, as the
 * backend itself is, for every copy of this module (vitest loads one per test file).
 */
const PACKAGE_DIR = Symbol.for('gantry.tensorflow.packageDir');
const globals = globalThis as Record<symbol, string | undefined>;
export const nativePackageDir = (): string | undefined => globals[PACKAGE_DIR];

/**
 * Loads a tfjs-node built by `gantry setup tensorflow` from the cache: its addon and its kernel table, with
 * `@tensorflow/tfjs` and `@tensorflow/tfjs-core` inside that install resolved to this process's tfjs-core (one
 * engine instance), and registers the `tensorflow` backend. Nothing of tfjs-node's own index (which would pull the
 * whole tfjs union and node-pre-gyp) is loaded.
 */
export function loadNativeBuild(
  flavour: NativeFlavour,
  dir: string,
  manifest: NativeManifest,
  kernels: EngineKernelSet = 'all',
  xla = false,
): string {
  if (loadedDetail != null) return loadedDetail;
  setTensorflowEnvironment(undefined, xla);
  const pkg = NATIVE_PACKAGES[flavour];
  const g = globalThis as Record<symbol, unknown>;
  g[TFJS_CORE_HANDOFF] ??= nodeRequire()('@tensorflow/tfjs-core');
  const pkgDir = join(dir, 'node_modules', pkg);
  globals[PACKAGE_DIR] = pkgDir;
  const req = createRequire(join(pkgDir, 'package.json'));
  // Loading libtensorflow writes its log lines; TF_CPP_MIN_LOG_LEVEL only applies to them through the capture.
  const binding = withTensorflowStderrFiltered(dir, () => req(join(pkgDir, 'lib', 'napi-v8', 'tfjs_binding.node')) as TfjsNodeBinding);
  const { NodeJSKernelBackend } = req(join(pkgDir, 'dist', 'nodejs_kernel_backend.js')) as {
    NodeJSKernelBackend: new (binding: TfjsNodeBinding, packageName: string) => tf.KernelBackend;
  };
  req(join(pkgDir, 'dist', 'register_all_kernels.js'));
  tf.registerBackend('tensorflow', () => new NodeJSKernelBackend(binding, pkg), 3);
  if (kernels === 'all') registerNativeKernels();
  loadedDetail = `libtensorflow ${binding.TF_Version} (${manifest.libtensorflow}; ${pkg.slice('@tensorflow/'.length)} ${manifest.version} built by gantry setup)`;
  return loadedDetail;
}

/** The classic install: tfjs-node(-gpu) in node_modules with its own prebuilt addon. */
async function loadFromNodeModules(pkg: string): Promise<'absent' | string> {
  try {
    // A variable specifier: both packages are optional peers and usually absent.
    await import(pkg);
    globals[PACKAGE_DIR] = dirname(nodeRequire().resolve(`${pkg}/package.json`));
    return `libtensorflow (${pkg.slice('@tensorflow/'.length)} from node_modules)`;
  } catch (err) {
    if (isModuleNotFound(err) && String((err as Error).message).includes(pkg)) return 'absent';
    throw err;
  }
}

function threadNote(): string {
  const intra = process.env.TF_NUM_INTRAOP_THREADS;
  return (intra ? `, ${intra} threads` : '') + (xlaAtLoad ? ', XLA JIT on graph steps' : '');
}

/** True when `useBackend('tensorflow')` has something to load: a build of `gantry setup tensorflow`, or tfjs-node(-gpu). */
export function nativeTensorflowInstalled(): boolean {
  return (['gpu', 'cpu'] as const).some(
    (flavour) => existsSync(join(nativeInstallDir(flavour, tf.version_core), NATIVE_MANIFEST)) || canResolve(NATIVE_PACKAGES[flavour]),
  );
}

/**
 * Starts the `tensorflow` backend: the cached build of `gantry setup tensorflow` (GPU flavour first), else a
 * tfjs-node(-gpu) installed in node_modules. `absent` when neither exists, so `auto` moves on without a word.
 */
export async function tryNativeTensorflow(threads?: number, kernels: EngineKernelSet = 'all', xla = false): Promise<NativeAttempt> {
  const reasons: string[] = [];
  if (loadedDetail == null && tf.findBackendFactory('tensorflow') == null) {
    setTensorflowEnvironment(threads, xla);
    for (const flavour of ['gpu', 'cpu'] as const) {
      const dir = nativeInstallDir(flavour, tf.version_core);
      const pkg = NATIVE_PACKAGES[flavour];
      try {
        const manifest = readManifest(dir);
        if (manifest) {
          loadNativeBuild(flavour, dir, manifest, kernels, xla);
          break;
        }
        const found = await loadFromNodeModules(pkg);
        if (found !== 'absent') {
          loadedDetail = found;
          if (kernels === 'all') registerNativeKernels();
          break;
        }
      } catch (err) {
        reasons.push(`${pkg} failed to load: ${String((err as Error).message).split('\n')[0]}`);
      }
    }
  }
  if (tf.findBackendFactory('tensorflow') != null) {
    if (xla && xlaAtLoad === false) {
      return { ok: false, absent: false, reason: 'xla was not asked for when libtensorflow loaded in this process (it is fixed at load)' };
    }
    if (await tf.setBackend('tensorflow')) {
      return { ok: true, detail: (loadedDetail ?? 'libtensorflow (registered by the caller)') + threadNote() };
    }
    reasons.push('the tensorflow backend failed to initialise');
  }
  if (reasons.length === 0) {
    return { ok: false, absent: true, reason: `no native TensorFlow is set up (run: ${SETUP_HINT})` };
  }
  return { ok: false, absent: false, reason: reasons.join('; ') };
}
