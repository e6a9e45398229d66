/**
 * Calibration of the training alerts (`diagnostics()` from @gantry/monitor) on the built-in experiments: default runs
 * that train well should raise no warning, constructed failures the right alert within a stated number of steps.
 * Each case trains in-process (no run folder) with the experiment's own setup plus `diagnostics()` at its defaults;
 * prints one JSON line per case (alerts with their steps, and the gradient-norm statistics the thresholds were
 * chosen from) and a markdown table.
 *
 *   nice npx tsx --conditions=@gantry/source scripts/alert-calibration.ts --threads 1 \
 *     --cases ring-wgan-gp,ring-unrolled,ring-gan:collapse@1100,ring-gan:nan,mnist-dcgan@100,mnist-dcgan:d-lr-10x@100 --steps 600
 *
 * A case is an experiment name (its default run) or `experiment:failure` with a constructed failure:
 * - `collapse`: from step `--collapse-at` (default 600) the generator's last layer ignores its input (kernel set to
 *   zero every step), so every sample is the same point;
 * - `d-lr-10x`: the discriminator's learning rate ×10 (same Adam betas);
 * - `vanishing-g`: the minimax (saturating) generator loss with D's learning rate ×10: once D rejects the samples
 *   confidently, log(1 − D(G(z))) is flat and G's gradient vanishes (Goodfellow et al. 2014, §3);
 * - `saturated-d`: the minimax generator loss, and from step `--saturate-at` (default 200) D's output bias lowered by
 *   20 once, so D calls every sample fake with a logit near −20: the saturating loss's gradient, σ(logit), is ~1e-9
 *   (the non-saturating loss would still get a full gradient there);
 * - `nan`: a loss term that turns NaN at step 50.
 * MNIST experiments are expensive on a CPU: give them few steps (`--steps` applies to every case; `case@steps`
 * overrides it for one).
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { Trainer, definePlugin, minimax, type GantryPlugin } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import { diagnostics } from '@gantry/monitor';
import { mnist } from '@gantry/datasets';
import { builtinExperiment } from '../packages/cli/src/experiments/index.js';
import { buildExperiment, type ExperimentSetup } from '../packages/cli/src/experiments/types.js';

const opts = new Command()
  .option('--cases <list>', 'cases: experiment or experiment:failure, optionally @steps', 'ring-gan,ring-gan:collapse,ring-gan:nan')
  .option('--steps <n>', 'steps per case', '1200')
  .option('--seed <n>', 'seed', '1')
  .option('--collapse-at <n>', 'step from which the collapse case zeroes the generator output layer', '600')
  .option('--saturate-at <n>', 'step at which the saturated-d case lowers D\'s output bias by 20', '200')
  .option('--trace <dir>', 'also write each case\'s per-step losses and gradient norms to <dir>/<case>.jsonl')
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'wasm threads', '1')
  .parse()
  .opts<{ cases: string; steps: string; seed: string; collapseAt: string; saturateAt: string; trace?: string; backend: string; threads: string }>();

interface Failure {
  /** What was constructed, for the table. */
  description: string;
  modify: (setup: ExperimentSetup) => ExperimentSetup;
}

/** The discriminator optimizer (Adam) with 10× its learning rate and the same betas. */
function tenfoldDiscriminatorRate(setup: ExperimentSetup): tf.Optimizer {
  const config = setup.optimizers?.discriminator?.getConfig() as { learningRate: number; beta1: number; beta2: number } | undefined;
  if (!config || setup.optimizers?.discriminator?.getClassName() !== 'Adam') throw new Error('d-lr-10x expects an Adam discriminator optimizer');
  return tf.train.adam(10 * config.learningRate, config.beta1, config.beta2);
}

const withPlugin = (setup: ExperimentSetup, plugin: GantryPlugin): ExperimentSetup => ({ ...setup, plugins: [...(setup.plugins ?? []), plugin] });
const collapseAt = Number(opts.collapseAt);
const saturateAt = Number(opts.saturateAt);

const FAILURES: Record<string, Failure> = {
  collapse: {
    description: `generator output made constant from step ${collapseAt}`,
    modify: (setup) =>
      withPlugin(
        setup,
        definePlugin({
          name: 'constructed-collapse',
          hooks: {
            beforeStep: {
              after: collapseAt - 1,
              handler: ({ trainer }) => {
                const last = trainer.generator.layers.at(-1)!;
                const [kernel, bias] = last.getWeights();
                const zero = tf.zerosLike(kernel);
                last.setWeights([zero, bias]);
                zero.dispose();
              },
            },
          },
        }),
      ),
  },
  'd-lr-10x': {
    description: 'discriminator learning rate ×10',
    modify: (setup) => ({ ...setup, optimizers: { ...setup.optimizers, discriminator: tenfoldDiscriminatorRate(setup) } }),
  },
  'vanishing-g': {
    description: 'minimax (saturating) G loss, D learning rate ×10',
    modify: (setup) => ({ ...setup, loss: minimax(), optimizers: { ...setup.optimizers, discriminator: tenfoldDiscriminatorRate(setup) } }),
  },
  'saturated-d': {
    description: `minimax G loss, D's output bias −20 at step ${saturateAt} (D rejects every sample)`,
    modify: (setup) =>
      withPlugin(
        { ...setup, loss: minimax() },
        definePlugin({
          name: 'constructed-saturation',
          hooks: {
            beforeStep: {
              once: saturateAt,
              handler: ({ trainer }) => {
                const last = trainer.discriminator.layers.at(-1)!;
                const [kernel, bias] = last.getWeights();
                const lowered = tf.sub(bias, 20);
                last.setWeights([kernel, lowered]);
                lowered.dispose();
              },
            },
          },
        }),
      ),
  },
  nan: {
    description: 'a loss term that is NaN from step 50',
    modify: (setup) =>
      withPlugin(
        setup,
        definePlugin({
          name: 'constructed-nan',
          hooks: { lossTerms: { phase: 'D', after: 49, handler: () => ({ nan: tf.scalar(Number.NaN) }) } },
        }),
      ),
  },
};

await useBackend(opts.backend as BackendName, { quiet: true, threads: Number(opts.threads) });
const seed = Number(opts.seed);
const rows: string[] = [];
for (const entry of opts.cases.split(',')) {
  const [name, stepsOverride] = entry.split('@');
  const [experimentName, failureName] = name.split(':');
  const failure = failureName === undefined ? undefined : FAILURES[failureName];
  if (failureName !== undefined && !failure) throw new Error(`unknown failure "${failureName}" (${Object.keys(FAILURES).join(', ')})`);
  const spec = { experiment: experimentName, failure: failure?.description };
  const experiment = builtinExperiment(experimentName);
  const steps = Number(stepsOverride ?? opts.steps);
  const batchSize = experiment.defaults.batchSize;
  const built = await buildExperiment(experiment, { seed, batchSize, steps, mnist });
  const setup = failure ? failure.modify(built) : built;
  // The ring experiments' own mode-coverage evaluation is not part of what is calibrated here.
  const plugins = (setup.plugins ?? []).filter((p) => p.name !== 'mode-coverage');
  const trainer = new Trainer({ ...setup, plugins: [diagnostics(), ...plugins], steps, batchSize, seed });
  const alerts: { step: number; kind: string; severity: string; message: string }[] = [];
  trainer.on('alert', (a) => void alerts.push({ step: a.step, kind: a.kind, severity: a.severity, message: a.message }));
  const ratios: number[] = [];
  const gNorms: number[] = [];
  const dLosses: number[] = [];
  const trace: string[] = [];
  trainer.on('step:end', ({ step, scalars }) => {
    if (opts.trace) trace.push(JSON.stringify({ step, d_loss: scalars.d_loss, g_loss: scalars.g_loss, grad_norm_D: scalars['diagnostics/grad_norm/D'], grad_norm_G: scalars['diagnostics/grad_norm/G'] }));
    const d = scalars['diagnostics/grad_norm/D'];
    const g = scalars['diagnostics/grad_norm/G'];
    if (d !== undefined && g !== undefined) ratios.push(d / Math.max(g, 1e-12));
    if (g !== undefined) gNorms.push(g);
    if (scalars.d_loss !== undefined) dLosses.push(scalars.d_loss);
  });
  const started = performance.now();
  let outcome = 'completed';
  try {
    await trainer.train();
  } catch (error) {
    outcome = `stopped: ${(error as Error).name}`;
  }
  const seconds = Math.round((performance.now() - started) / 1000);
  if (opts.trace) {
    mkdirSync(opts.trace, { recursive: true });
    writeFileSync(join(opts.trace, `${entry.replace(/[^\w@.-]+/g, '_')}.jsonl`), trace.join('\n') + '\n');
  }
  const quantile = (xs: number[], q: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))] : NaN);
  const stats = {
    ratio: { p50: quantile(ratios, 0.5), p95: quantile(ratios, 0.95), max: Math.max(...ratios) },
    gNorm: { first20: quantile(gNorms.slice(0, 20), 0.5), last20: quantile(gNorms.slice(-20), 0.5), min: Math.min(...gNorms) },
    dLoss: { first100min: Math.min(...dLosses.slice(0, 100)), last20: quantile(dLosses.slice(-20), 0.5) },
  };
  console.log(JSON.stringify({ case: entry, experiment: spec.experiment, steps, seed, seconds, outcome, alerts, stats }));
  const warnings = alerts.filter((a) => a.severity !== 'info');
  const first = warnings[0];
  rows.push(
    `| ${spec.failure ? `${spec.experiment}: ${spec.failure}` : `${spec.experiment} (default)`} | ${steps} | ` +
      `${warnings.length ? [...new Set(warnings.map((a) => a.kind))].join(', ') : 'none'} | ${first ? first.step : '–'} |`,
  );
  setup.generator.dispose();
  setup.discriminator.dispose();
}
console.log('\n| experiment or failure | steps | alerts (warning or error) | step of first alert |');
console.log('| --- | --- | --- | --- |');
console.log(rows.join('\n'));
