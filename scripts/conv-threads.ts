/**
 * The reference DCGAN step's convolutions one at a time on the tensorflow backend (forward, input gradient, filter
 * gradient of both critic convs; the generator's transposed convs are the same input gradients): wall and CPU ms per
 * call, to compare kernels and to see how each scales from 1 to 2 threads (TensorFlow reads its thread count once per
 * process, so run it once per count). Best of --repeats after 3 warm-up calls: on a shared machine the best call is
 * the one the other work disturbed least.
 *
 *   npx tsx --conditions=@gantry/source scripts/conv-threads.ts --threads 2 [--batch 64] [--repeats 30]
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@gantry/engine';

const opts = new Command()
  .option('--threads <n>', 'TensorFlow intra-op threads', '2')
  .option('--batch <n>', 'batch size', '64')
  .option('--repeats <n>', 'timed calls per case', '30')
  .parse()
  .opts<{ threads: string; batch: string; repeats: string }>();

await useBackend('tensorflow', { threads: Number(opts.threads), quiet: true });
const batch = Number(opts.batch);
const repeats = Number(opts.repeats);

/** A conv of the step: NHWC input, HWIO filter, stride 2, 'same' padding (k4 s2 in both models). */
interface ConvCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
}
const convs: ConvCase[] = [
  { name: 'D conv1 28x28x1 -> 14x14x64', x: [batch, 28, 28, 1], filter: [4, 4, 1, 64] },
  { name: 'D conv2 14x14x64 -> 7x7x128', x: [batch, 14, 14, 64], filter: [4, 4, 64, 128] },
];

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function time(run: () => tf.Tensor): { wall: number; cpu: number } {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < repeats + 3; i++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    const out = run();
    out.dataSync();
    const w = performance.now() - t0;
    const c = cpuMs() - c0;
    out.dispose();
    if (i >= 3) {
      wall = Math.min(wall, w);
      cpu = Math.min(cpu, c);
    }
  }
  return { wall, cpu };
}

const rows: string[] = [];
for (const c of convs) {
  const x = tf.randomUniform(c.x, -1, 1, 'float32', 1) as tf.Tensor4D;
  const filter = tf.randomUniform(c.filter, -0.1, 0.1, 'float32', 2) as tf.Tensor4D;
  const y = tf.conv2d(x, filter, 2, 'same');
  const dy = tf.randomUniform(y.shape, -1, 1, 'float32', 3) as tf.Tensor4D;
  const cases: Record<string, () => tf.Tensor> = {
    forward: () => tf.conv2d(x, filter, 2, 'same'),
    'input gradient': () => tf.conv2dTranspose(dy, filter, c.x, 2, 'same'),
    'filter gradient': () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: c.filter }) as tf.Tensor,
  };
  for (const [kind, run] of Object.entries(cases)) {
    const t = time(run);
    rows.push(`${`${c.name} ${kind}`.padEnd(48)} wall ${t.wall.toFixed(2).padStart(7)} ms  CPU ${t.cpu.toFixed(2).padStart(7)} ms`);
  }
  tf.dispose([x, filter, y, dy]);
}
console.log(`tensorflow, ${opts.threads} threads, batch ${batch}, best of ${repeats}`);
console.log(rows.join('\n'));
