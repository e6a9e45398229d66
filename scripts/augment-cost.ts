/**
 * CPU time of the augmentations on one MNIST-sized batch, forward and backward (the gradient with respect to the
 * images, as the generator's update needs), next to one reference DCGAN discriminator forward + backward. CPU time
 * (process.cpuUsage) rather than wall time, so a loaded machine distorts it less; median of --repeats calls.
 *
 *   npx tsx --conditions=@gantry/source scripts/augment-cost.ts [--backend wasm] [--threads 1] [--batch 64] [--repeats 20]
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, withSeed } from '@gantry/core';
import { referenceDiscriminator, useBackend, type BackendName } from '@gantry/engine';
import { ADA_TRANSFORMS, applyAda, applyDiffAugment, drawAda, drawDiffAugment } from '@gantry/augment';

const opts = new Command()
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'wasm threads', '1')
  .option('--batch <n>', 'batch size', '64')
  .option('--repeats <n>', 'timed calls per case', '20')
  .parse()
  .opts<{ backend: string; threads: string; batch: string; repeats: string }>();

await useBackend(opts.backend as BackendName, { threads: Number(opts.threads), quiet: true });
const batch = Number(opts.batch);
const repeats = Number(opts.repeats);
const rng = new Rng(1);
const x = tf.randomUniform([batch, 28, 28, 1], -1, 1, 'float32', 1) as tf.Tensor4D;
const disc = withSeed(0, () => referenceDiscriminator());
const enabled = new Set(ADA_TRANSFORMS);

const cases: Record<string, (input: tf.Tensor4D) => tf.Tensor> = {
  'D alone (reference)': (input) => disc.apply(input) as tf.Tensor,
  'DiffAugment color,translation,cutout': (input) => applyDiffAugment(input, drawDiffAugment(rng, ['color', 'translation', 'cutout'], batch, 28, 28)),
  'ADA p = 0.2': (input) => applyAda(input, drawAda(rng, 0.2, batch, [28, 28], enabled)),
  'ADA p = 1': (input) => applyAda(input, drawAda(rng, 1, batch, [28, 28], enabled)),
};

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
for (const [name, f] of Object.entries(cases)) {
  const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.square(f(input as tf.Tensor4D))));
  const times: number[] = [];
  for (let i = 0; i < repeats + 2; i++) {
    const start = cpuMs();
    const g = gradient(x);
    await g.data();
    g.dispose();
    if (i >= 2) times.push(cpuMs() - start);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ case: name, batch, backend: tf.getBackend(), cpu_ms_median: Number(times[times.length >> 1].toFixed(1)) }));
}
