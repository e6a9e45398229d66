import * as tf from '@tensorflow/tfjs-core';
import { nodeRequire } from './node-require.js';

/**
 * Loads the wasm backend in Node, multithreaded.
 *
 * tfjs-backend-wasm ships a threaded SIMD build (emscripten pthreads, which run on Node's worker_threads) but its
 * flag `WASM_HAS_MULTITHREAD_SUPPORT` is hard-coded false in Node (tfjs issue 3830), because its loader hands the
 * pthread worker script to `new Worker()` as a browser Blob URL. Gantry instantiates the same threaded build itself:
 *
 * - the worker script (a string the package exports) is written once to a file in the temp folder, and the main
 *   script is given by path — what emscripten's Node pthread support expects;
 * - emscripten sizes the XNNPACK thread pool as min(requested, logical cores / 2) (it assumes hyper-threading), so
 *   `os.cpus()` reports twice the cores while the module initializes, then is restored;
 * - the tfjs wrapper reads the heap through `module.HEAPU8`, a view emscripten refreshes only on the thread that grew
 *   the memory; a getter that re-creates the view when the shared buffer grew keeps it valid;
 * - pthread workers are unref'd so an idle pool does not keep the process alive.
 *
 * The kernels and the `BackendWasm` class are the package's own; only the module instance differs. XNNPACK splits
 * each convolution/matmul into output tiles per thread, so results are identical to the single-threaded build.
 */

export interface WasmLoadResult {
  threads: number;
  detail: string;
}

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  wasmMemory: WebAssembly.Memory;
  HEAPU8: Uint8Array;
  PThread?: { runningWorkers: { unref(): void }[]; unusedWorkers: { unref(): void }[] };
  tfjs?: unknown;
}

type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

const THREADED_BUILD = 'tfjs-backend-wasm-threaded-simd';

function packageDir(): string {
  const req = nodeRequire();
  const pkgJson = req.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return pkgJson.slice(0, pkgJson.length - 'package.json'.length);
}

export interface ThreadChoice {
  threads: number;
  /** Why fewer threads than cores, for the backend line. */
  note?: string;
}

/**
 * Default thread count: `GANTRY_WASM_THREADS` when set; else the cores other processes leave free (1-minute load
 * average), at least 1, at most 8 (XNNPACK's pool). XNNPACK splits each op evenly and waits for the slowest thread,
 * so a thread that the OS deschedules stalls every op: on the 2-core machine at load 6–10 two threads were ~25% slower
 * per step than one (ENGINE.md).
 */
export async function defaultWasmThreads(): Promise<ThreadChoice> {
  const fromEnv = Number(process.env.GANTRY_WASM_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return { threads: Math.min(8, fromEnv) };
  const os = await import('node:os');
  const cores = Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  const load = os.loadavg()[0];
  const free = Math.ceil(cores - load - 0.25);
  const threads = Math.max(1, Math.min(8, cores, free));
  if (threads < Math.min(8, cores)) {
    return { threads, note: `load ${load.toFixed(1)} on ${cores} cores; GANTRY_WASM_THREADS overrides` };
  }
  return { threads };
}

async function writeWorkerScript(dir: string): Promise<string> {
  const [fs, os, path, crypto] = await Promise.all([
    import('node:fs'),
    import('node:os'),
    import('node:path'),
    import('node:crypto'),
  ]);
  const { wasmWorkerContents } = nodeRequire()(path.join(dir, 'wasm-out', `${THREADED_BUILD}.worker.js`)) as {
    wasmWorkerContents: string;
  };
  // The package's own loader does the same escaping before turning the string into a Blob.
  const script = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = crypto.createHash('sha256').update(script).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `gantry-${THREADED_BUILD}-${hash}.worker.cjs`);
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== script) {
    // Write-then-rename: a second process starting at the same moment never sees half a file.
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, script);
    fs.renameSync(partial, file);
  }
  return file;
}

/** Keeps `module.HEAPU8` a view of the current (possibly grown) shared memory. */
function keepHeapViewFresh(module: EmscriptenModule): void {
  const memory = module.wasmMemory;
  let view = module.HEAPU8;
  Object.defineProperty(module, 'HEAPU8', {
    configurable: true,
    enumerable: true,
    get: () => {
      if (view.buffer !== memory.buffer) view = new Uint8Array(memory.buffer);
      return view;
    },
    set: (v: Uint8Array) => {
      view = v;
    },
  });
}

function threadedFactory(wasm: WasmPackage, dir: string, threads: number): () => Promise<tf.KernelBackend> {
  return async () => {
    const path = await import('node:path');
    // The CommonJS module object: the one emscripten's `require("os")` sees, and (unlike the ESM namespace) writable.
    const os = nodeRequire()('node:os') as typeof import('node:os');
    const workerFile = await writeWorkerScript(dir);
    const mainScript = path.join(dir, 'wasm-out', `${THREADED_BUILD}.js`);
    const binary = path.join(dir, 'dist', `${THREADED_BUILD}.wasm`);
    const factory = nodeRequire()(mainScript) as (config: object) => Promise<EmscriptenModule>;
    const cpus = os.cpus;
    os.cpus = () => {
      const real = cpus();
      return Array.from({ length: 2 * threads }, (_, i) => real[i % Math.max(1, real.length)]);
    };
    let module: EmscriptenModule;
    try {
      module = await factory({
        locateFile: (file: string, prefix: string) =>
          file.endsWith('.worker.js') ? workerFile : file.endsWith('.wasm') ? binary : prefix + file,
        mainScriptUrlOrBlob: mainScript,
      });
    } finally {
      os.cpus = cpus;
    }
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    keepHeapViewFresh(module);
    wasm.setThreadsCount(threads);
    const backend = new wasm.BackendWasm(module as never);
    for (const worker of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) {
      worker.unref();
    }
    return backend;
  };
}

interface EngineInternals {
  registry: Record<string, tf.KernelBackend | undefined>;
  registryFactory: Record<string, { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number }>;
}

/**
 * Makes 'wasm' the active backend, with `threads` XNNPACK threads when > 1. Falls back to the stock single-threaded
 * SIMD build (with the reason in `detail`) when the threaded one fails to start. If a wasm backend was already
 * initialised, it is kept as it is.
 */
export async function loadWasm(threads: number, threadNote?: string): Promise<WasmLoadResult> {
  const wasm: WasmPackage = await import('@tensorflow/tfjs-backend-wasm');
  const dir = packageDir();
  wasm.setWasmPaths(`${dir}dist/`);
  const engine = tf.engine() as unknown as EngineInternals;
  let note = '';
  if (engine.registry.wasm == null && threads > 1) {
    const stock = engine.registryFactory.wasm;
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', threadedFactory(wasm, dir, threads), stock?.priority ?? 2);
    const quietWarn = console.warn;
    let failure = '';
    // tfjs reports a failed backend start with console.warn; it becomes our one-line fallback note instead.
    console.warn = (...args: unknown[]) => {
      failure += (failure ? ' | ' : '') + args.map(String).join(' ').split('\n')[0];
    };
    let ok = false;
    try {
      ok = await tf.setBackend('wasm');
    } finally {
      console.warn = quietWarn;
    }
    if (!ok) {
      tf.removeBackend('wasm');
      if (stock) tf.registerBackend('wasm', stock.factory, stock.priority);
      note = `, threaded build failed (${failure || 'unknown error'}), using 1 thread`;
    }
  }
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) {
    throw new Error('the wasm backend failed to initialise');
  }
  const actual = Math.max(1, wasm.getThreadsCount());
  const simd = actual > 1 || (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'SIMD' : 'no SIMD';
  const why = threadNote && actual === threads ? ` [${threadNote}]` : '';
  return { threads: actual, detail: `XNNPACK, ${simd}, ${actual} thread${actual === 1 ? '' : 's'}${why}${note}` };
}
