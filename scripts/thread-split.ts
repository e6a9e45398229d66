/**
 * Where a reference DCGAN step's CPU time runs, thread by thread (Linux: /proc/self/task/<tid>/schedstat): the main
 * thread (JavaScript, TensorFlow's op dispatch, the kernels it runs itself) against the intra-op pool (oneDNN and
 * Eigen work split across threads). Per step: on-CPU ms and ms spent runnable but waiting for a core (what other work
 * on a shared machine costs); for the main thread also the rest of the wall time, when it sleeps waiting for the pool.
 * On an idle machine the step takes at least main on-CPU + the busiest pool thread's on-CPU, since the main thread
 * waits for the pool at every op. `--backend wasm`: the pool is XNNPACK's (emscripten pthreads on worker_threads,
 * splitting convolutions and matrix products with the main thread); everything else runs on the main thread.
 *
 *   npx tsx --conditions=@gantry/source scripts/thread-split.ts [--loss wgan-gp] [--threads 2] [--steps 20] [--backend wasm]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { BENCH_LOSSES, runBench, type BenchLoss } from '@gantry/engine';
import { threadSchedstat } from './thread-times.js';

const opts = new Command()
  .option('--loss <name>', `loss (${BENCH_LOSSES.join(', ')})`, 'wgan-gp')
  .option('--threads <n>', 'TensorFlow intra-op threads', '2')
  .option('--steps <n>', 'timed steps', '20')
  .option('--backend <name>', 'tensorflow or wasm', 'tensorflow')
  .parse()
  .opts<{ loss: string; threads: string; steps: string; backend: string }>();
if (opts.backend !== 'tensorflow' && opts.backend !== 'wasm') throw new Error(`--backend: tensorflow or wasm, got ${opts.backend}`);
const backend = opts.backend;

const loss = opts.loss as BenchLoss;
const threads = Number(opts.threads);
const steps = Number(opts.steps);

// A first bench starts the backend and warms TensorFlow's kernel and oneDNN primitive caches (wasm: XNNPACK's).
await runBench({ backend, threads, losses: [loss], steps: 1, warmup: 2, onResult: () => {} });
const before = threadSchedstat();
const t0 = performance.now();
// The measured bench builds its models again (a few ms) and runs `steps` timed steps plus one profiled step.
const [result] = await runBench({ backend, threads, losses: [loss], steps, warmup: 0, onResult: () => {} });
const wallPerStep = (performance.now() - t0) / (steps + 1);
const after = threadSchedstat();

const main = String(process.pid);
console.log(`${loss}, ${backend}, ${threads} threads: median ${result.ms_per_step} ms/step, CPU ${result.cpu_ms_per_step} ms/step`);
console.log('per step (ms):     on-CPU  runnable  asleep');
for (const [tid, [onCpu, waiting]] of after) {
  const [onCpu0, waiting0] = before.get(tid) ?? [0, 0];
  const on = (onCpu - onCpu0) / 1e6 / (steps + 1);
  const runnable = (waiting - waiting0) / 1e6 / (steps + 1);
  if (on < 1) continue;
  const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
  const asleep = tid === main ? (wallPerStep - on - runnable).toFixed(1).padStart(8) : '';
  console.log(`${(tid === main ? 'main' : `${name} ${tid}`).padEnd(18)} ${on.toFixed(1).padStart(7)} ${runnable.toFixed(1).padStart(9)}${asleep}`);
}
