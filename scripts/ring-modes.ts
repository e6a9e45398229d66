/**
 * Mode coverage of the built-in ring experiments over several seeds. Each run trains in-process (no run folder) with
 * the experiment's own networks, loss, optimizers, plugins and batch size; prints one JSON line per run and a summary.
 *
 *   npx tsx --conditions=@gantry/source scripts/ring-modes.ts \
 *     --experiments ring-gan,ring-unrolled-first-order,ring-unrolled,ring-minibatch,ring-wgan-gp \
 *     --seeds 0,1,2 --steps 3000 [--backend wasm] [--threads 1]
 *
 * The counts are the experiments' own `eval` events (ring-gan's modeCoverage, every 500 steps, 2500 fixed-noise
 * samples): `modes` = modes holding ≥ 1% of the samples within 3σ (0.06) of their centre, `near` = the same within 0.3,
 * `hq` = fraction of samples within 3σ.
 */
import { Command } from 'commander';
import { Trainer } from '@gantry/core';
import { useBackend, type BackendName } from '@gantry/engine';
import { builtinExperiment } from '../packages/cli/src/experiments/index.js';
import { buildForRun } from '../packages/cli/src/run-config.js';

const opts = new Command()
  .option('--experiments <list>', 'built-in ring experiments', 'ring-gan,ring-unrolled-first-order,ring-unrolled')
  .option('--seeds <list>', 'seeds', '0,1,2')
  .option('--steps <n>', 'steps per run', '3000')
  .option('--backend <name>', 'backend', 'wasm')
  .option('--threads <n>', 'wasm threads')
  .parse()
  .opts<{ experiments: string; seeds: string; steps: string; backend: string; threads?: string }>();

interface Count {
  step: number;
  modes: number;
  near: number;
  hq: number;
}

await useBackend(opts.backend as BackendName, { quiet: true, ...(opts.threads ? { threads: Number(opts.threads) } : {}) });
const summary: string[] = [];
for (const name of opts.experiments.split(',')) {
  const experiment = builtinExperiment(name);
  const finals: string[] = [];
  for (const seed of opts.seeds.split(',').map(Number)) {
    const steps = Number(opts.steps);
    const batchSize = experiment.defaults.batchSize;
    const setup = await buildForRun(experiment, { seed, batchSize, steps });
    const counts: Count[] = [];
    const trainer = new Trainer({ ...setup, steps, batchSize, seed });
    // Every ring experiment evaluates itself (ring-gan's modeCoverage plugin, every 500 steps): collect its events.
    trainer.on('eval', ({ step, metrics }) => {
      counts.push({ step, modes: metrics.modes_covered, near: metrics.modes_near, hq: metrics.high_quality });
    });
    const started = performance.now();
    await trainer.train();
    const seconds = Math.round((performance.now() - started) / 1000);
    const last = counts.at(-1)!;
    finals.push(`${last.modes}/${last.near} (${(100 * last.hq).toFixed(0)}%)`);
    const trajectory = counts.map((c) => `${c.step}:${c.modes}/${c.near}`).join(' ');
    console.log(JSON.stringify({ experiment: name, seed, steps, seconds, modes: last.modes, near: last.near, hq: last.hq, trajectory }));
    setup.generator.dispose();
    setup.discriminator.dispose();
  }
  summary.push(`${name}\tmodes within 3σ / within 0.3 (samples within 3σ), per seed: ${finals.join(', ')}`);
}
console.log(summary.join('\n'));
