/**
 * What one reference DCGAN step dispatches on the tensorflow backend, by name: the tfjs kernels (one profiled step)
 * and the TensorFlow eager ops (counted at tfjs-node's addon over the timed steps). Load-independent, so it shows
 * what a change removed. `--stacks Reshape` also lists where an op is called from (the JavaScript frames just above
 * the tfjs op that ran it). `--convs` lists every convolution and matrix product of one step in order, with shapes,
 * attributes, MFLOP and the gradient-tape depth (`--backend wasm` lists only these).
 *
 *   npx tsx --conditions=@gantry/source scripts/op-tally.ts [--loss wgan-gp] [--steps 3] [--stacks Reshape]
 *   npx tsx --conditions=@gantry/source scripts/op-tally.ts --backend wasm --convs [--loss non-saturating]
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { BENCH_LOSSES, runBench, type BenchLoss } from '@gantry/engine';
import { describeCall, profiledKernelCalls } from './kernel-calls.js';

const opts = new Command()
  .option('--loss <name>', `loss (${BENCH_LOSSES.join(', ')})`, 'wgan-gp')
  .option('--steps <n>', 'counted steps', '3')
  .option('--stacks <op>', 'also list the JavaScript call sites of this TensorFlow op (all: every op, by Gantry source line)')
  .option('--convs', 'list the convolutions and matrix products of one step')
  .option('--backend <name>', 'tensorflow, or wasm (with --convs)', 'tensorflow')
  .parse()
  .opts<{ loss: string; steps: string; stacks?: string; convs?: boolean; backend: string }>();
const loss = opts.loss as BenchLoss;
const steps = Number(opts.steps);

if (opts.convs) {
  const backend = opts.backend === 'wasm' ? 'wasm' : 'tensorflow';
  const { result, calls } = await profiledKernelCalls(backend, loss, { threads: 1 });
  console.log(`${loss} on ${backend}: ${calls.length} convolutions and matrix products, ${result.gflop_per_step} GFLOP per step (tape depth, call)`);
  for (const c of calls) console.log(`  ${c.tapeDepth}  ${describeCall(c)}`);
  if (backend === 'wasm') process.exit(0);
} else if (opts.backend !== 'tensorflow') {
  throw new Error('--backend wasm lists only --convs (the TensorFlow op count needs the tensorflow backend)');
}

interface Binding {
  executeOp: (name: string, ...rest: unknown[]) => unknown;
}
const ops = new Map<string, number>();
const sites = new Map<string, number>();
Error.stackTraceLimit = 60;

/** Call site of an op: the frames above the first tfjs op (or, for ops that Gantry's kernels run, above the last native/*.ts frame) on the stack. */
function callSite(): string {
  const frames = (new Error().stack ?? '')
    .split('\n')
    .slice(3)
    .map((l) => l.trim().replace(/^at /, '').replace(/\(.*\/(node_modules\/)?/, '('));
  const op = frames.findIndex((l) => /operation\.ts/.test(l));
  const first = op >= 0 ? op : frames.length - 1 - [...frames].reverse().findIndex((l) => /native\/[\w-]+\.ts/.test(l));
  return frames.slice(first + 1, first + 5).join(' < ');
}

function count(name: string, sign: number): void {
  ops.set(name, (ops.get(name) ?? 0) + sign);
  if (opts.stacks === 'all') {
    const frame = (new Error().stack ?? '').split('\n').slice(3).find((l) => /\/packages\/(?!engine\/src\/native)/.test(l) && !/node_modules/.test(l));
    const key = frame?.trim().replace(/^at /, '').replace(/\(.*\/packages\//, '(') ?? '(no Gantry frame)';
    sites.set(key, (sites.get(key) ?? 0) + sign);
  } else if (name === opts.stacks) {
    const key = callSite();
    sites.set(key, (sites.get(key) ?? 0) + sign);
  }
}

// A first bench starts the backend; then the addon's executeOp is wrapped for two benches of `steps` and `2 × steps`
// timed steps (same warm-up): their difference is exactly `steps` steps, without the model building, the optimizers'
// first update (resource creation) or the profiled step (not counted: tf.profile is on).
await runBench({ backend: 'tensorflow', threads: 1, losses: [loss], steps: 1, warmup: 1, onResult: () => {} });
const backend = tf.backend() as unknown as { binding: Binding };
const binding = backend.binding;
const profiling = () => (tf.engine().state as unknown as { profiling: boolean }).profiling;
backend.binding = Object.create(binding, {
  executeOp: {
    value: (name: string, ...rest: unknown[]) => {
      if (!profiling()) count(name, sign);
      return binding.executeOp(name, ...rest);
    },
  },
}) as Binding;
let sign = -1;
await runBench({ backend: 'tensorflow', threads: 1, losses: [loss], steps, warmup: 1, onResult: () => {} });
sign = 1;
const [result] = await runBench({ backend: 'tensorflow', threads: 1, losses: [loss], steps: 2 * steps, warmup: 1, profile: true, onResult: () => {} });
backend.binding = binding;
const perStep = (v: number) => (v / steps).toFixed(1).replace(/\.0$/, '');
const total = [...ops.values()].reduce((a, b) => a + b, 0);
console.log(`${loss}: ${result.kernels_per_step} tfjs kernels, ${perStep(total)} TensorFlow ops per step`);
console.log('tfjs kernels:', result.profile!.map((r) => `${r.kernel} ${r.count}`).sort().join(', '));
console.log('TensorFlow ops:', [...ops].filter(([, v]) => v !== 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${perStep(v)}`).join(', '));
if (opts.stacks) {
  console.log(`${opts.stacks} per step by call site:`);
  for (const [k, v] of [...sites].filter(([, n]) => n !== 0).sort((a, b) => b[1] - a[1])) console.log(`${perStep(v).padStart(6)}  ${k}`);
}
