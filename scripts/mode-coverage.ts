/**
 * Mode coverage on the 2-D mixtures under the published protocols (a benchmark, not a test): ring-8 and grid-25,
 * several seeds, 2500 samples from the trained generator, both counts (VEEGAN's "at least one sample within 3σ" and
 * the stricter "≥ 1% of the samples within 3σ") and the high-quality fraction.
 *
 *   nice npx tsx --conditions=@gantry/source scripts/mode-coverage.ts \
 *     --data ring --variants gan,unrolled --seeds 1,2,3 --steps 25000 --threads 1
 *
 * Protocol `reference` (default) is the settings of the unrolled-GAN authors' reference implementation
 * (github.com/poolio/unrolled_gan), which VEEGAN used for its unrolled-GAN row ("we set the number of unrolling steps
 * to five as suggested in the authors' reference implementation"): G and D MLPs with two hidden layers of 128 tanh
 * units, orthogonal initialization with gain 1.4, z ~ N(0, I₂₅₆), batch 512, Adam β1 0.5, generator learning rate
 * 1e-3, discriminator 1e-4 (also the step size of the 5 unrolled updates, which mirror D's Adam), the generator
 * minimizing the minimax objective (−log(1 − D(G(z))), what `minimize(-unrolled_loss)` does), 25 000 steps.
 * Protocol `gantry` is the built-in ring experiments' setup (ReLU MLPs with D one hidden layer, Adam 1e-3 for both,
 * non-saturating loss), for comparison.
 *
 * Data: ring = 8 Gaussians on radius 2, σ 0.02 (Metz et al. 2017; PacGAN's code uses radius 1, σ 0.01: the same
 * ratio); grid = 5×5 Gaussians at {−4, −2, 0, 2, 4}², σ 0.05 as in PacGAN's code (`--grid-std 0.02` for σ 0.02).
 * Prints one JSON line per run, then a markdown table of means over seeds.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Command } from 'commander';
import { Rng, Trainer, minimax, nonSaturating, withSeed, type GanLoss, type GantryPlugin } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import { countModes, grid, ring, type Mixture2D } from '@gantry/datasets';
import { unrolled } from '@gantry/unrolled';

const opts = new Command()
  .option('--data <name>', 'ring or grid', 'ring')
  .option('--variants <list>', 'gan, unrolled, unrolled-first-order, pacgan2, pacgan3, pacgan4', 'gan,unrolled')
  .option('--protocol <name>', 'reference (the unrolled-GAN reference implementation) or gantry', 'reference')
  .option('--seeds <list>', 'seeds', '1,2,3')
  .option('--steps <n>', 'steps per run', '25000')
  .option('--eval-every <n>', 'evaluate every n steps (the last step is always evaluated)', '5000')
  .option('--samples <n>', 'generated samples per evaluation', '2500')
  .option('--grid-std <x>', 'σ of the grid modes', '0.05')
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'wasm threads', '1')
  .parse()
  .opts<{
    data: string;
    variants: string;
    protocol: string;
    seeds: string;
    steps: string;
    evalEvery: string;
    samples: string;
    gridStd: string;
    backend: string;
    threads: string;
  }>();

const LATENT_DIM = 256;

interface Protocol {
  generator(seed: number): tfl.LayersModel;
  discriminator(inputDim: number, seed: number): tfl.LayersModel;
  loss: () => GanLoss;
  learningRates: { generator: number; discriminator: number };
}

/**
 * Dense MLP; with `orthogonalGain`, every kernel is a random orthogonal matrix times the gain (the reference's
 * `tf.orthogonal_initializer(gain=1.4)`; tfjs-layers' own orthogonal initializer fails under tfjs-core 4 with
 * "rMat.flatten is not a function"), drawn from `seed`.
 */
function mlp(name: string, sizes: number[], activation: 'tanh' | 'relu', seed: number, orthogonalGain?: number): tfl.LayersModel {
  const model = tfl.sequential({
    name,
    layers: sizes.slice(1).map((units, i) =>
      tfl.layers.dense({ ...(i === 0 ? { inputShape: [sizes[0]] } : {}), units, activation: i < sizes.length - 2 ? activation : 'linear' }),
    ),
  });
  if (orthogonalGain !== undefined) {
    model.layers.forEach((layer, i) => {
      const [kernel, bias] = layer.getWeights();
      const [rows, cols] = kernel.shape;
      const q = tf.tidy(() => {
        // QR of a tall Gaussian matrix: Q has orthonormal columns; transpose when the kernel is wide.
        const tall = tf.randomNormal([Math.max(rows, cols), Math.min(rows, cols)], 0, 1, 'float32', seed * 101 + i);
        const [qTall] = tf.linalg.qr(tall);
        return tf.mul(rows >= cols ? qTall : tf.transpose(qTall), orthogonalGain);
      });
      layer.setWeights([q, bias]);
      q.dispose(); // getWeights() returns the live variable values: kernel and bias stay
    });
  }
  return model;
}

const PROTOCOLS: Record<string, Protocol> = {
  reference: {
    generator: (seed) => mlp('generator', [LATENT_DIM, 128, 128, 2], 'tanh', seed, 1.4),
    discriminator: (d, seed) => mlp('discriminator', [d, 128, 128, 1], 'tanh', seed + 7, 1.4),
    loss: minimax,
    learningRates: { generator: 1e-3, discriminator: 1e-4 },
  },
  gantry: {
    generator: (seed) => mlp('generator', [LATENT_DIM, 128, 128, 2], 'relu', seed),
    discriminator: (d, seed) => mlp('discriminator', [d, 128, 1], 'relu', seed),
    loss: nonSaturating,
    learningRates: { generator: 1e-3, discriminator: 1e-3 },
  },
};

async function variantPlugins(variant: string): Promise<{ plugins: GantryPlugin[]; pack: number }> {
  if (variant === 'gan') return { plugins: [], pack: 1 };
  if (variant === 'unrolled') return { plugins: [unrolled({ steps: 5, mode: 'full' })], pack: 1 };
  if (variant === 'unrolled-first-order') return { plugins: [unrolled({ steps: 5, mode: 'first-order' })], pack: 1 };
  const m = /^pacgan(\d+)$/.exec(variant);
  if (m) {
    const { pacgan } = await import('@gantry/pacgan');
    return { plugins: [pacgan({ degree: Number(m[1]) })], pack: Number(m[1]) };
  }
  throw new Error(`unknown variant "${variant}"`);
}

const protocol = PROTOCOLS[opts.protocol];
if (!protocol) throw new Error(`unknown protocol "${opts.protocol}" (reference or gantry)`);
const data: Mixture2D =
  opts.data === 'ring' ? ring({ modes: 8, radius: 2, std: 0.02 }) : opts.data === 'grid' ? grid({ size: 5, spacing: 2, std: Number(opts.gridStd) }) : undefined!;
if (!data) throw new Error(`unknown data "${opts.data}" (ring or grid)`);

await useBackend(opts.backend as BackendName, { quiet: true, threads: Number(opts.threads) });
const steps = Number(opts.steps);
const evalEvery = Number(opts.evalEvery);
const samples = Number(opts.samples);

interface Row {
  variant: string;
  seed: number;
  any: number;
  strict: number;
  hq: number;
  seconds: number;
}
const rows: Row[] = [];
for (const variant of opts.variants.split(',')) {
  for (const seed of opts.seeds.split(',').map(Number)) {
    const { plugins, pack } = await variantPlugins(variant);
    const { generator, discriminator } = withSeed(seed, () => ({
      generator: protocol.generator(seed),
      discriminator: protocol.discriminator(2 * pack, seed),
    }));
    const trainer = new Trainer({
      generator,
      discriminator,
      data,
      steps,
      batchSize: 512,
      seed,
      loss: protocol.loss(),
      optimizers: {
        generator: tf.train.adam(protocol.learningRates.generator, 0.5, 0.999, 1e-8),
        discriminator: tf.train.adam(protocol.learningRates.discriminator, 0.5, 0.999, 1e-8),
      },
      plugins,
    });
    const trajectory: string[] = [];
    let last = { any: 0, strict: 0, hq: 0 };
    const evaluate = async (step: number) => {
      // A private RNG: evaluating must not change the training stream.
      const z = trainer.sampleLatent(samples, new Rng(0x5eed + seed));
      const points = trainer.generate(z);
      const values = await points.data();
      tf.dispose([z, points]);
      const count = countModes(values, data);
      last = { any: count.coveredByAny, strict: count.covered, hq: count.highQuality };
      trajectory.push(`${step}:${count.coveredByAny}/${count.covered}/${(100 * count.highQuality).toFixed(1)}%`);
      // Progress on stderr: a long run that is stopped early still leaves its trajectory.
      console.error(`${variant} seed ${seed} step ${step}: ${trajectory.at(-1)} (${Math.round((performance.now() - started) / 1000)} s)`);
    };
    const started = performance.now();
    trainer.on('step:end', async ({ step }) => {
      if (step % evalEvery === 0 || step === steps) await evaluate(step);
    });
    await trainer.train();
    const seconds = Math.round((performance.now() - started) / 1000);
    rows.push({ variant, seed, ...last, seconds });
    console.log(JSON.stringify({ data: data.name, protocol: opts.protocol, variant, seed, steps, seconds, ...last, trajectory: trajectory.join(' ') }));
    generator.dispose();
    discriminator.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`\n| ${data.name} (${opts.protocol}, ${steps} steps) | modes, ≥ 1 sample within 3σ (VEEGAN) | modes, ≥ 1% within 3σ | high-quality samples | seconds per run |`);
console.log('| --- | --- | --- | --- | --- |');
for (const variant of [...new Set(rows.map((r) => r.variant))]) {
  const rs = rows.filter((r) => r.variant === variant);
  const list = (f: (r: Row) => string) => rs.map(f).join(' / ');
  console.log(
    `| ${variant} | ${mean(rs.map((r) => r.any)).toFixed(1)} (${list((r) => String(r.any))}) | ` +
      `${mean(rs.map((r) => r.strict)).toFixed(1)} (${list((r) => String(r.strict))}) | ` +
      `${(100 * mean(rs.map((r) => r.hq))).toFixed(1)}% (${list((r) => (100 * r.hq).toFixed(1))}) | ${list((r) => String(r.seconds))} |`,
  );
}
