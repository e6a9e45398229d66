import type { Command } from 'commander';
import { GantryError } from '@gantry/core';
import { BACKEND_NAMES, BENCH_LOSSES, runBench, type BackendName, type BenchLoss, type BenchResult } from '@gantry/engine';

interface BenchFlags {
  json?: boolean;
  batch: string;
  backend: string;
  loss?: string;
  steps: string;
  warmup: string;
  threads?: string;
  profile?: boolean;
  kernels: string;
}

function positiveInt(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new GantryError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function printHuman(r: BenchResult): void {
  console.log(
    `${r.loss.padEnd(15)} batch ${r.batch}  ${(r.ms_per_step / 1000).toFixed(3)} s/step (best ${(r.ms_best / 1000).toFixed(3)})` +
      `  ${r.gflops.toFixed(1)} GFLOP/s  [${r.backend}: ${r.detail}]`,
  );
  if (r.profile) {
    for (const row of r.profile.filter((p) => p.total_ms >= 0.5)) {
      console.log(`    ${row.kernel.padEnd(24)} ${row.total_ms.toFixed(1).padStart(9)} ms  ${String(row.count).padStart(4)}×`);
    }
  }
}

/** `gantry bench`: one D + one G step of the reference DCGAN-MNIST, per loss; JSON lines with --json. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time one D + one G step of the reference DCGAN-MNIST (non-saturating and WGAN-GP losses)')
    .option('--json', 'print one JSON line per loss: {backend, batch, loss, ms_per_step, gflops, ...}')
    .option('--batch <n>', 'batch size', '64')
    .option('--backend <name>', `backend: ${BACKEND_NAMES.join(', ')}`, 'auto')
    .option('--loss <name>', `only this loss: ${BENCH_LOSSES.join(', ')}`)
    .option('--steps <n>', 'timed steps (the median is reported)', '5')
    .option('--warmup <n>', 'untimed steps first', '2')
    .option('--threads <n>', 'wasm: XNNPACK threads (default: all cores)')
    .option('--profile', 'add the per-kernel time table of one profiled step')
    .option('--kernels <set>', 'all: Gantry kernels; required: stock tfjs plus only what it lacks (the "before")', 'all')
    .action(async (flags: BenchFlags) => {
      if (!BACKEND_NAMES.includes(flags.backend as BackendName)) {
        throw new GantryError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${flags.backend}"`);
      }
      if (flags.loss != null && !BENCH_LOSSES.includes(flags.loss as BenchLoss)) {
        throw new GantryError(`--loss must be one of ${BENCH_LOSSES.join(', ')}, got "${flags.loss}"`);
      }
      if (flags.kernels !== 'all' && flags.kernels !== 'required') {
        throw new GantryError(`--kernels must be all or required, got "${flags.kernels}"`);
      }
      await runBench({
        kernels: flags.kernels,
        backend: flags.backend as BackendName,
        batch: positiveInt('batch', flags.batch),
        steps: positiveInt('steps', flags.steps),
        warmup: positiveInt('warmup', flags.warmup, 0),
        threads: flags.threads == null ? undefined : positiveInt('threads', flags.threads),
        losses: flags.loss ? [flags.loss as BenchLoss] : undefined,
        profile: Boolean(flags.profile),
        verbose: !flags.json,
        onResult: flags.json ? (r) => console.log(JSON.stringify(r)) : printHuman,
      });
    });
}
