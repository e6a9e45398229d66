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
 * `--members` trains a variant's seeds as members of one model (`stackMembers` in @gantry/core): one set of kernels
 * per step for all seeds, each member initialized from its own seed and drawing its own rows of data and latents.
 * `--fast-normals` draws the latents (training and the evaluation's fixed noise) with the ziggurat (Trainer option
 * `normalGenerator: 'fast'`): other numbers than the default's, so other runs of the same distribution.
 * Prints one JSON line per seed, then a markdown table of means over seeds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { Rng, memberRows } from '@gantry/core';
import { captureSteps, useBackend, type BackendName } from '@gantry/engine';
import { countModes } from '@gantry/datasets';
import { mixture, protocolNamed, protocolWith, toyTrainer } from './toy-protocol.js';

const opts = new Command()
  .option('--data <name>', 'ring or grid', 'ring')
  .option('--variants <list>', 'gan, unrolled, unrolled-first-order, pacgan2, pacgan3, pacgan4', 'gan,unrolled')
  .option('--protocol <name>', 'reference (the unrolled-GAN reference implementation) or gantry', 'reference')
  .option('--seeds <list>', 'seeds', '1,2,3')
  .option('--steps <n>', 'steps per run', '25000')
  .option('--eval-every <n>', 'evaluate every n steps (the last step is always evaluated)', '5000')
  .option('--samples <n>', 'generated samples per evaluation', '2500')
  .option('--grid-std <x>', 'σ of the grid modes', '0.05')
  .option('--backend <name>', 'backend (auto: native TensorFlow when set up, else wasm)', 'auto')
  .option('--threads <n>', "threads: wasm's workers, or TensorFlow's intra-op pool unless TF_NUM_INTRAOP_THREADS is set", '1')
  .option('--concurrent', 'train all runs (every variant and seed) in one process, one step of each in turn')
  .option('--graph', 'tensorflow backend: run the steps as recorded TensorFlow graphs (captureSteps; not with --concurrent)')
  .option('--xla', 'tensorflow backend, with --graph: compile the graph steps with XLA (fused element-wise ops; other last bits)')
  .option('--members', "train a variant's seeds as members of one model (one set of kernels per step for all seeds)")
  .option('--stop-after <minutes>', 'stop every run after this many minutes of wall time and report the step it reached')
  .option('--fast-normals', "draw the latents (training and evaluation) with the fast ziggurat: normalGenerator 'fast'")
  .option('--g-lr <x>', "ablation: the generator's learning rate instead of the protocol's")
  .option('--d-lr <x>', "ablation: the discriminator's learning rate instead of the protocol's (also the lookahead's)")
  .option('--loss <name>', "ablation: minimax or non-saturating instead of the protocol's loss")
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
    concurrent?: boolean;
    members?: boolean;
    graph?: boolean;
    xla?: boolean;
    stopAfter?: string;
    gLr?: string;
    dLr?: string;
    loss?: string;
    fastNormals?: boolean;
  }>();

/** Bad options end the script with one line before anything trains. */
function orExit<T>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    console.error(`mode-coverage: ${(error as Error).message}`);
    process.exit(2);
  }
}
const protocol = orExit(() =>
  protocolWith(protocolNamed(opts.protocol), {
    generatorLearningRate: opts.gLr,
    discriminatorLearningRate: opts.dLr,
    loss: opts.loss,
  }),
);
const data = orExit(() => mixture(opts.data, Number(opts.gridStd)));

await useBackend(opts.backend as BackendName, { quiet: true, threads: Number(opts.threads), xla: opts.xla });
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
  /** The step evaluated last: `--steps` unless stopped by `--stop-after`. */
  step: number;
}
const rows: Row[] = [];
const stopAt = opts.stopAfter === undefined ? Infinity : performance.now() + 60_000 * Number(opts.stopAfter);

/** Trains `seeds` of `variant`: one run, or with `--members` several seeds as members of one model. */
async function run(variant: string, seeds: number[]): Promise<void> {
  const capture = opts.graph ? captureSteps() : undefined;
  const normalGenerator = opts.fastNormals ? 'fast' : 'tfjs';
  const trainer = await toyTrainer({ protocol, variant, data, seeds, steps, stepRunner: capture?.run, normalGenerator });
  const trajectories: string[][] = seeds.map(() => []);
  let last = seeds.map(() => ({ step: 0, any: 0, strict: 0, hq: 0 }));
  const label = `${variant} seed${seeds.length > 1 ? 's' : ''} ${seeds.join(',')}`;
  const evaluate = async (step: number) => {
    // Each seed's own fixed noise from a private RNG (evaluating must not change the training stream); members
    // take their rows of one batch.
    const z = tf.concat(seeds.map((seed) => trainer.sampleLatent(samples, new Rng(0x5eed + seed))));
    const points = trainer.generate(z);
    const perSeed = seeds.map((_, m) => memberRows(points, seeds.length, m));
    const counts = [];
    for (const member of perSeed) counts.push(countModes(await member.data(), data));
    tf.dispose([z, points, ...perSeed]);
    last = counts.map((count) => ({ step, any: count.coveredByAny, strict: count.covered, hq: count.highQuality }));
    counts.forEach((count, i) => trajectories[i].push(`${step}:${count.coveredByAny}/${count.covered}/${(100 * count.highQuality).toFixed(1)}%`));
    // Progress on stderr: a long run that is stopped early still leaves its trajectory.
    console.error(`${label} step ${step}: ${trajectories.map((t) => t.at(-1)).join(' ')} (${Math.round((performance.now() - started) / 1000)} s)`);
  };
  const started = performance.now();
  let stopped = false;
  trainer.on('step:end', async ({ step }) => {
    if (!stopped && performance.now() > stopAt) {
      stopped = true;
      trainer.stop();
    }
    if (step % evalEvery === 0 || step === steps || stopped) await evaluate(step);
  });
  await trainer.train();
  const seconds = Math.round((performance.now() - started) / 1000);
  seeds.forEach((seed, i) => {
    const { step, ...counts } = last[i];
    rows.push({ variant, seed, ...counts, seconds, step });
    const members = seeds.length > 1 ? { members: seeds } : {};
    console.log(JSON.stringify({ data: data.name, protocol: opts.protocol, learningRates: protocol.learningRates, ...(opts.loss ? { loss: opts.loss } : {}), variant, seed, ...members, steps: step, seconds, ...counts, trajectory: trajectories[i].join(' ') }));
  });
  capture?.dispose();
  trainer.generator.dispose();
  trainer.discriminator.dispose();
}

const seedList = opts.seeds.split(',').map(Number);
const variants = opts.variants.split(',');
const runs: [string, number[]][] = variants.flatMap((variant) =>
  opts.members ? [[variant, seedList] as [string, number[]]] : seedList.map((seed) => [variant, [seed]] as [string, number[]]),
);
// Concurrent runs interleave whole steps (the trainer yields between steps); each has its own RNG, so every run is
// the same as alone, and all of them reach the same step when time runs out.
// One capture wraps the backend at a time: steps of several trainers interleaved would not replay one recording.
if (opts.graph && opts.concurrent && runs.length > 1) throw new Error('--graph runs one trainer at a time: leave out --concurrent (or use --members)');
if (opts.concurrent) await Promise.all(runs.map(([variant, seeds]) => run(variant, seeds)));
else for (const [variant, seeds] of runs) await run(variant, seeds);
const order = (r: Row) => variants.indexOf(r.variant) * seedList.length + seedList.indexOf(r.seed);
rows.sort((a, b) => order(a) - order(b));

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const reached = [...new Set(rows.map((r) => r.step))].join(', ');
console.log(`\n| ${data.name} (${opts.protocol}, ${reached} steps) | modes, ≥ 1 sample within 3σ (VEEGAN) | modes, ≥ 1% within 3σ | high-quality samples | seconds per run |`);
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
