/**
 * Mode coverage on the 8-Gaussian ring: ring-gan (plain) against ring-unrolled (first-order and full), several seeds.
 *
 *   npx tsx --conditions=@gantry/source packages/unrolled/bench/ring-modes.ts --steps 5000 --seeds 0,1,2,3 \
 *     --variants plain,first-order,full [--k 5] [--every 1000] [--backend wasm --threads 1]
 *
 * Prints one JSON line per run: modes covered out of 8 by 2500 samples (a mode counts when it holds at least 1% of
 * the samples within 3σ of its centre), the fraction of such high-quality samples, coverage every `--every` steps,
 * and seconds. The sampling draws from the trainer's RNG after training, so the numbers are a function of the seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Trainer, nonSaturating, useBackend, withSeed, type GantryPlugin } from '@gantry/core';
import { countModes, ring } from '@gantry/datasets';
import { unrolled } from '../src/index.js';
import { ringDiscriminator, ringGenerator } from '../../cli/src/experiments/ring-gan.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const steps = Number(arg('steps', '3000'));
const seeds = arg('seeds', '0,1,2,3').split(',').map(Number);
const variants = arg('variants', 'plain,first-order,full').split(',');
const unrollSteps = Number(arg('k', '5'));
const backend = arg('backend', 'auto');
const threads = process.argv.includes('--threads') ? Number(arg('threads', '1')) : undefined;
const every = Number(arg('every', '0'));

await useBackend(backend as never, threads ? { threads } : {});
const data = ring({ modes: 8, radius: 2, std: 0.02 });
for (const seed of seeds) {
  for (const variant of variants) {
    const plugins: GantryPlugin[] = variant === 'plain' ? [] : [unrolled({ steps: unrollSteps, mode: variant as 'first-order' | 'full' })];
    const { generator, discriminator } = withSeed(seed, () => ({ generator: ringGenerator(), discriminator: ringDiscriminator() }));
    const trainer = new Trainer({
      generator,
      discriminator,
      data,
      steps,
      batchSize: 512,
      seed,
      loss: nonSaturating(),
      optimizers: { generator: tf.train.adam(1e-4, 0.5, 0.999), discriminator: tf.train.adam(1e-4, 0.5, 0.999) },
      plugins,
    });
    const coverage = async () => {
      const z = trainer.sampleLatent(2500);
      const samples = trainer.generate(z);
      const modes = countModes(await samples.data(), data);
      tf.dispose([z, samples]);
      return modes;
    };
    const history: number[] = [];
    if (every > 0) {
      trainer.on('step:end', async ({ step }) => {
        if (step % every === 0 && step < steps) history.push((await coverage()).covered);
      });
    }
    const started = performance.now();
    await trainer.train();
    const seconds = (performance.now() - started) / 1000;
    const modes = await coverage();
    console.log(
      JSON.stringify({ seed, variant, steps, k: unrollSteps, covered: modes.covered, coveredAlongTheWay: history, highQuality: Number(modes.highQuality.toFixed(3)), perMode: modes.perMode, seconds: Number(seconds.toFixed(1)) }),
    );
    generator.dispose();
    discriminator.dispose();
  }
}
