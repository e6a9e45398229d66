import { CONV_PARAMS } from './conv-module.js';
import { hasRelaxedSimd, rowShares, startSimdConvOn, type ConvExports, type RowSplitter } from './simd-conv.js';

/** Control block per helper thread (Int32): [0] job sequence (negative: stop), [1] done (sequence, negated on error), [2..] conv's args. */
const CONTROL_INTS = 2 + CONV_PARAMS.length;

/**
 * A helper thread: instantiates the conv module on the same shared memory, then runs every job posted in its control
 * block. It sleeps in Atomics.wait between jobs (no spinning: on 2 cores a spinning helper would take the core the
 * main thread's single-threaded work needs).
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, argCount } = workerData;
const { conv } = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  const seq = Atomics.load(ctl, 0);
  if (seq === seen) continue;
  if (seq < 0) break;
  seen = seq;
  let status = seq;
  try {
    conv(...ctl.subarray(2, 2 + argCount));
  } catch {
    status = -seq;
  }
  Atomics.store(ctl, 1, status);
  Atomics.notify(ctl, 1);
}
`;

/** A share takes milliseconds; a helper silent for this long has died with its job (its error was reported). */
const HELPER_DEADLINE_MS = 60_000;

export class WorkerSplitter implements RowSplitter {
  private seq = 0;
  /** Why the helpers were dropped (a helper thread failed or exited); then every row runs on the calling thread. */
  private lost: string | null = null;

  constructor(
    private readonly conv: ConvExports['conv'],
    private readonly controls: Int32Array[],
    readonly workers: { terminate(): Promise<number> }[],
  ) {}

  get threads(): number {
    return this.lost == null ? this.controls.length + 1 : 1;
  }

  /** Called from a helper's 'error' or 'exit' event: later convolutions run whole on the calling thread. */
  helperLost(why: string): void {
    if (this.lost != null || this.seq < 0) return;
    this.lost = why;
    console.warn(`gantry: a wasm convolution helper thread stopped (${why}); convolutions continue on one thread`);
  }

  run(rows: number, args: number[]): void {
    if (this.lost != null) {
      this.conv(0, rows, ...args);
      return;
    }
    const shares = rowShares(rows, this.threads);
    const seq = ++this.seq;
    const posted: Int32Array[] = [];
    // Share 0 stays on this thread; the others go to the helpers.
    for (let i = 1; i < shares.length; i++) {
      const ctl = this.controls[i - 1];
      ctl.set([shares[i][0], shares[i][1], ...args], 2);
      Atomics.store(ctl, 0, seq);
      Atomics.notify(ctl, 0);
      posted.push(ctl);
    }
    this.conv(shares[0][0], shares[0][1], ...args);
    for (const ctl of posted) {
      const deadline = Date.now() + HELPER_DEADLINE_MS;
      for (;;) {
        const done = Atomics.load(ctl, 1);
        if (done === seq) break;
        if (done === -seq) throw new Error('Gantry engine: the wasm convolution failed on a helper thread');
        if (Date.now() > deadline) {
          throw new Error(`Gantry engine: a wasm convolution helper thread did not answer within ${HELPER_DEADLINE_MS / 1000} s`);
        }
        Atomics.wait(ctl, 1, done, 1000);
      }
    }
  }

  stop(): void {
    this.seq = -1;
    for (const ctl of this.controls) {
      Atomics.store(ctl, 0, -1);
      Atomics.notify(ctl, 0);
    }
    for (const w of this.workers) void w.terminate();
  }
}

/**
 * Whether relaxed SIMD validates; in Node 20 (V8 11.3) it is behind a flag, which is set here (V8 reads wasm feature
 * flags when it validates a module, so setting it before the first relaxed module is compiled is enough).
 */
async function enableRelaxedSimd(): Promise<boolean> {
  if (hasRelaxedSimd()) return true;
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return hasRelaxedSimd();
}

/**
 * Starts Gantry's FMA convolution on the active wasm backend with `threads` threads: the calling one and threads − 1
 * helpers on the shared heap (1 thread where the heap is not shared). Returns a note for the backend line, or null
 * when this Node has no relaxed SIMD (the stock XNNPACK convolution stays).
 */
export async function startSimdConv(backend: unknown, threads: number): Promise<string | null> {
  if (!(await enableRelaxedSimd())) return null;
  const { Worker } = await import('node:worker_threads');
  return startSimdConvOn(backend, (exports, module, memory) => startHelpers(Worker, exports, module, memory, threads));
}

/** threads − 1 helper threads running `module`'s conv on `memory` (none where the memory is not shared). */
export function startHelpers(
  Worker: typeof import('node:worker_threads').Worker,
  exports: ConvExports,
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  threads: number,
): WorkerSplitter {
  const helpers = memory.buffer instanceof SharedArrayBuffer ? Math.max(0, threads - 1) : 0;
  const controls: Int32Array[] = [];
  const workers: InstanceType<typeof Worker>[] = [];
  for (let i = 0; i < helpers; i++) {
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    const worker = new Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, control, argCount: CONV_PARAMS.length } });
    worker.unref();
    controls.push(new Int32Array(control));
    workers.push(worker);
  }
  const splitter = new WorkerSplitter(exports.conv, controls, workers);
  for (const worker of workers) {
    worker.on('error', (error: Error) => splitter.helperLost(error.message.split('\n')[0]));
    worker.on('exit', (code: number) => splitter.helperLost(`exit code ${code}`));
  }
  return splitter;
}
