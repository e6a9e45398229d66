/**
 * Which wasm kernels use XNNPACK's second thread: each kernel, at the reference step's sizes, run `--calls` times with
 * 2 threads, and the on-CPU ms per call of every thread of the process (Linux: /proc/self/task/<tid>/schedstat). A
 * kernel that splits its work shows about half on the main thread and half on one worker; one that does not runs
 * wholly on the main thread, so at 2 threads it counts in full in the step's wall time. Thread on-CPU times hold on a
 * loaded machine (the wall time would not). A filter conv shows the split is working.
 *
 *   nice -n 19 npx tsx --conditions=@gantry/source scripts/wasm-threaded-ops.ts [--calls 100]
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@gantry/engine';
import { threadSchedstat } from './thread-times.js';

const opts = new Command().option('--calls <n>', 'calls per kernel', '100').parse().opts<{ calls: string }>();
const calls = Number(opts.calls);
await useBackend('wasm', { threads: 2, quiet: true });

/** On-CPU ms of every thread of this process so far. */
const onCpu = (): Map<string, number> => new Map([...threadSchedstat()].map(([tid, [onCpuNs]]) => [tid, onCpuNs / 1e6]));

const act = tf.randomNormal([64, 14, 14, 64]);
const other = tf.randomNormal([64, 14, 14, 64]);
const image = tf.randomNormal([64, 28, 28, 1]);
const filter = tf.randomNormal([4, 4, 64, 128]) as tf.Tensor4D;
const cases: Record<string, () => tf.Tensor> = {
  'Multiply 64×14×14×64': () => tf.mul(act, other),
  'Add 64×14×14×64': () => tf.add(act, other),
  'Tanh 64×28×28×1': () => tf.tanh(image),
  'Sqrt 64×14×14×64': () => tf.sqrt(other),
  'Sum over 64×14×14 (pooled)': () => tf.sum(act, [0, 1, 2]),
  'Transpose 64×14×14×64': () => tf.transpose(act, [3, 1, 2, 0]),
  'LeakyRelu 64×14×14×64 (PReLU)': () => tf.leakyRelu(act, 0.2),
  'Conv2D 14×14×64 → 7×7×128': () => tf.conv2d(act as tf.Tensor4D, filter, 2, 'same'),
};
const main = String(process.pid);
console.log(`on-CPU ms per call, 2 threads, ${calls} calls (threads under 0.01 ms per call left out)`);
for (const [name, run] of Object.entries(cases)) {
  for (let i = 0; i < 3; i++) tf.dispose(run());
  const before = onCpu();
  for (let i = 0; i < calls; i++) tf.dispose(run());
  const per = [...onCpu()]
    .map(([tid, ms]) => [tid === main ? 'main' : `thread ${tid}`, (ms - (before.get(tid) ?? 0)) / calls] as const)
    .filter(([, ms]) => ms >= 0.01)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  ${name.padEnd(32)} ${per.map(([t, ms]) => `${t} ${ms.toFixed(3)}`).join(', ')}`);
}
