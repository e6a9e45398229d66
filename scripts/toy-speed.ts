/**
 * Where a toy step's time goes (a benchmark, not a test): trains the 2-D mixture GANs of `mode-coverage.ts` for a few
 * steps on one backend and prints, per variant, CPU and wall milliseconds per step and the engine's kernel calls per
 * step. CPU time (user + system of this process) is the number to compare on a shared machine; wall time is printed
 * beside it with the load average.
 *
 *   nice npx tsx --conditions=@gantry/source scripts/toy-speed.ts --backend wasm --variants gan,pacgan2,unrolled
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { loadavg } from 'node:os';
import { captureSteps, useBackend, type BackendName } from '@gantry/engine';
import { mixture, protocolNamed, toyTrainer } from './toy-protocol.js';

const opts = new Command()
  .option('--data <name>', 'ring or grid', 'ring')
  .option('--variants <list>', 'gan, unrolled, unrolled-first-order, pacgan2, …', 'gan,pacgan2,unrolled')
  .option('--protocol <name>', 'reference or gantry', 'reference')
  .option('--warmup <n>', 'steps before timing starts', '5')
  .option('--steps <n>', 'timed steps', '20')
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'threads', '1')
  .option('--graph', 'tensorflow backend: run recorded steps as TensorFlow graphs (captureSteps)')
  .option('--members <n>', 'seeds 1…n trained as members of one model (stackMembers)', '1')
  .parse()
  .opts<{ data: string; variants: string; protocol: string; warmup: string; steps: string; backend: string; threads: string; members: string; graph?: boolean }>();

const choice = await useBackend(opts.backend as BackendName, { quiet: true, threads: Number(opts.threads) });
const protocol = protocolNamed(opts.protocol);
const data = mixture(opts.data);
const warmup = Number(opts.warmup);
const timed = Number(opts.steps);

// Count every kernel the engine dispatches (forward, gradient and optimizer ops alike).
const engine = tf.engine() as unknown as { runKernelFunc: (...args: unknown[]) => unknown };
const runKernelFunc = engine.runKernelFunc.bind(engine);
let kernelCalls = 0;
engine.runKernelFunc = (...args: unknown[]) => {
  kernelCalls++;
  return runKernelFunc(...args);
};

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

console.log(`backend ${tf.getBackend()} (${choice.detail ?? ''}), load average ${loadavg()[0].toFixed(1)}`);
console.log(`| ${opts.data} (${opts.protocol}, ${opts.members} member(s)) on ${opts.backend} | CPU ms/step | wall ms/step | steps/s (CPU) | kernel calls/step |`);
console.log('| --- | --- | --- | --- | --- |');
for (const variant of opts.variants.split(',')) {
  const seeds = Array.from({ length: Number(opts.members) }, (_, i) => i + 1);
  const capture = opts.graph ? captureSteps() : undefined;
  const trainer = await toyTrainer({ protocol, variant, data, seeds, steps: warmup + timed, stepRunner: capture?.run });
  let start = { cpu: 0, wall: 0, kernels: 0 };
  let end = start;
  trainer.on('step:end', ({ step }) => {
    const now = { cpu: cpuMs(), wall: performance.now(), kernels: kernelCalls };
    if (step === warmup) start = now;
    if (step === warmup + timed) end = now;
  });
  await trainer.train();
  const cpu = (end.cpu - start.cpu) / timed;
  const wall = (end.wall - start.wall) / timed;
  console.log(`| ${variant} | ${cpu.toFixed(1)} | ${wall.toFixed(1)} | ${(1000 / cpu).toFixed(1)} | ${Math.round((end.kernels - start.kernels) / timed)} |`);
  if (capture) console.log(JSON.stringify(capture.stats));
  capture?.dispose();
  trainer.generator.dispose();
  trainer.discriminator.dispose();
}
