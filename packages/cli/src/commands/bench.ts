import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  graph?: boolean;
  kernels: string;
  torch: boolean;
  torchPython?: string;
}

/** A row of the side-by-side table: one engine, ms per step for each loss. */
export interface BenchRow {
  engine: string;
  detail: string;
  ms: Partial<Record<BenchLoss, number>>;
  /** Process CPU time per step (all threads): on a shared machine it stretches less than the wall time. */
  cpuMs?: Partial<Record<BenchLoss, number>>;
}

/** Backends `--backend all` tries, fastest first; cpu is left out (minutes per step) unless named. */
const ALL_BACKENDS: BackendName[] = ['tensorflow', 'webgpu', 'wasm'];

function positiveInt(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new GantryError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function printHuman(r: BenchResult): void {
  console.log(
    `${r.loss.padEnd(15)} batch ${r.batch}  ${(r.ms_per_step / 1000).toFixed(3)} s/step (best ${(r.ms_best / 1000).toFixed(3)})` +
      `${r.gflops ? `  ${r.gflops.toFixed(1)} GFLOP/s` : ''}  [${r.backend}: ${r.detail}]`,
  );
  if (r.kernels_per_step) {
    const native = r.native_ops_per_step == null ? '' : `, ${r.native_ops_per_step} TensorFlow ops + ${r.native_uploads_per_step} uploads`;
    console.log(`    per step: CPU ${r.cpu_ms_per_step.toFixed(1)} ms, ${r.kernels_per_step} tfjs kernels${native}`);
  }
  if (r.profile) {
    for (const row of r.profile.filter((p) => p.total_ms >= 0.5)) {
      console.log(`    ${row.kernel.padEnd(24)} ${row.total_ms.toFixed(1).padStart(9)} ms  ${String(row.count).padStart(4)}×`);
    }
  }
}

/** scripts/bench/dcgan_torch.py of the Gantry repository this CLI runs from, or in the current folder's tree. */
function findTorchScript(): string | undefined {
  const rel = join('scripts', 'bench', 'dcgan_torch.py');
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, rel))) return join(dir, rel);
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** The PyTorch reference rows, or the reason there are none (no torch, no script). */
function runTorch(
  python: string,
  explicit: boolean,
  args: { batch: number; steps: number; warmup: number; threads: number; losses: readonly BenchLoss[] },
): BenchResult[] | string {
  const script = findTorchScript();
  if (!script) return 'scripts/bench/dcgan_torch.py not found (run from the Gantry repository)';
  const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    if (explicit) throw new GantryError(`--torch-python ${python}: cannot import torch`);
    return `${python} cannot import torch (--torch-python PATH names a Python that can)`;
  }
  const r = spawnSync(
    python,
    [script, '--batch', String(args.batch), '--steps', String(args.steps), '--warmup', String(args.warmup),
      '--threads', String(args.threads), ...args.losses.flatMap((l) => ['--loss', l])],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (r.status !== 0) return `the PyTorch reference failed: ${String(r.stderr).trim().split('\n').slice(-1)[0]}`;
  return String(r.stdout)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as BenchResult);
}

const LOSS_TITLES: Record<BenchLoss, string> = { 'non-saturating': 'non-saturating', 'wgan-gp': 'WGAN-GP' };

/** One Markdown table: ms per step per loss, and speed relative to PyTorch (PyTorch ms / this engine's ms). */
export function formatBenchTable(rows: BenchRow[], losses: readonly BenchLoss[], batch: number): string {
  const torch = rows.find((r) => r.engine === 'pytorch');
  const head = ['engine', ...losses.map((l) => `${LOSS_TITLES[l]} ms/step`)];
  if (torch) head.push(...losses.map((l) => `${LOSS_TITLES[l]} vs PyTorch`));
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const cell = (l: BenchLoss) => {
      if (r.ms[l] == null) return '–';
      const cpu = r.cpuMs?.[l];
      return cpu == null ? r.ms[l]!.toFixed(1) : `${r.ms[l]!.toFixed(1)} (CPU ${cpu.toFixed(0)})`;
    };
    const cells = [`${r.engine} (${r.detail})`, ...losses.map(cell)];
    if (torch) {
      cells.push(...losses.map((l) => (r.ms[l] == null || torch.ms[l] == null ? '–' : `${(torch.ms[l]! / r.ms[l]!).toFixed(2)}×`)));
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push(
    `(batch ${batch}; median wall ms of the timed steps, with process CPU ms where measured; "vs PyTorch" = PyTorch's wall ` +
      'time / this engine\'s, above 1 is faster)',
  );
  return lines.join('\n');
}

/**
 * The backend's detail up to its first ';' or unclosed '(' (the kernel list and the libtensorflow source are long),
 * plus whether wasm's convolutions ran on the FMA convolution (the detail's last part says so).
 */
export function shortDetail(r: { detail: string; graph?: unknown }): string {
  const head = r.detail.split(';')[0].replace(/ \(skipped:.*$/, '');
  const open = head.split('(').length - head.split(')').length;
  const short = open > 0 ? head.slice(0, head.lastIndexOf('(')).trim() : head;
  const fma = /; FMA conv\b/.test(r.detail) ? ', FMA conv' : '';
  return r.graph ? `${short}${fma}, graph steps` : `${short}${fma}`;
}

/** `gantry bench`: one D + one G step of the reference DCGAN-MNIST, per loss, per backend, beside PyTorch. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time one D + one G step of the reference DCGAN-MNIST on every installed backend and PyTorch, as one table')
    .option('--json', 'print one JSON line per backend and loss: {backend, batch, loss, ms_per_step, gflops, ...}')
    .option('--batch <n>', 'batch size', '64')
    .option('--backend <name>', `all (every installed backend but cpu) or one of ${BACKEND_NAMES.join(', ')}`, 'all')
    .option('--loss <name>', `only this loss: ${BENCH_LOSSES.join(', ')}`)
    .option('--steps <n>', 'timed steps (the median is reported)', '5')
    .option('--warmup <n>', 'untimed steps first', '2')
    .option('--threads <n>', 'threads for wasm, tensorflow and PyTorch (default: all cores)')
    .option('--profile', 'add the per-kernel time table of one profiled step')
    .option('--no-graph', 'tensorflow: every op eagerly, not recorded steps as TensorFlow graphs (what gantry train --no-graph runs)')
    .option('--kernels <set>', 'all: Gantry kernels; required: stock tfjs plus only what it lacks (the "before")', 'all')
    .option('--no-torch', 'leave out the PyTorch reference row')
    .option('--torch-python <path>', 'Python with torch for the reference row (default: python3 when it imports torch)')
    .action(async (flags: BenchFlags) => {
      if (flags.backend !== 'all' && !BACKEND_NAMES.includes(flags.backend as BackendName)) {
        throw new GantryError(`--backend must be all or one of ${BACKEND_NAMES.join(', ')}, got "${flags.backend}"`);
      }
      if (flags.loss != null && !BENCH_LOSSES.includes(flags.loss as BenchLoss)) {
        throw new GantryError(`--loss must be one of ${BENCH_LOSSES.join(', ')}, got "${flags.loss}"`);
      }
      if (flags.kernels !== 'all' && flags.kernels !== 'required') {
        throw new GantryError(`--kernels must be all or required, got "${flags.kernels}"`);
      }
      const batch = positiveInt('batch', flags.batch);
      const steps = positiveInt('steps', flags.steps);
      const warmup = positiveInt('warmup', flags.warmup, 0);
      const threads = flags.threads == null ? undefined : positiveInt('threads', flags.threads);
      const losses = flags.loss ? [flags.loss as BenchLoss] : [...BENCH_LOSSES];
      const backends = flags.backend === 'all' ? ALL_BACKENDS : [flags.backend as BackendName];
      const rows: BenchRow[] = [];
      for (const backend of backends) {
        let results: BenchResult[];
        try {
          results = await runBench({
            kernels: flags.kernels,
            backend,
            batch,
            steps,
            warmup,
            threads,
            losses,
            profile: Boolean(flags.profile),
            graph: flags.graph !== false,
            verbose: !flags.json && flags.backend !== 'all',
            onResult: flags.json ? (r) => console.log(JSON.stringify(r)) : printHuman,
          });
        } catch (err) {
          // `all` skips backends that are not installed here; a named one must run.
          if (flags.backend === 'all' && err instanceof GantryError && /not available/.test(err.message)) {
            if (!flags.json) console.log(`(${backend}: ${err.message.replace(/^Backend "\w+" is not available: /, '')})`);
            continue;
          }
          throw err;
        }
        rows.push({
          engine: results[0].backend,
          detail: shortDetail(results[0]),
          ms: Object.fromEntries(results.map((r) => [r.loss, r.ms_per_step])),
          cpuMs: Object.fromEntries(results.map((r) => [r.loss, r.cpu_ms_per_step])),
        });
      }
      if (flags.torch) {
        const python = flags.torchPython ?? 'python3';
        const torchThreads = threads ?? (await import('node:os')).availableParallelism();
        const torch = runTorch(python, flags.torchPython != null, { batch, steps, warmup, threads: torchThreads, losses });
        if (typeof torch === 'string') {
          if (!flags.json) console.log(`(PyTorch row left out: ${torch})`);
        } else {
          for (const r of torch) {
            if (flags.json) console.log(JSON.stringify(r));
            else printHuman(r);
          }
          rows.push({
            engine: 'pytorch',
            detail: torch[0]?.detail ?? '',
            ms: Object.fromEntries(torch.map((r) => [r.loss, r.ms_per_step])),
            cpuMs: Object.fromEntries(torch.map((r) => [r.loss, r.cpu_ms_per_step])),
          });
        }
      }
      if (!flags.json && rows.length > 0) console.log(`\n${formatBenchTable(rows, losses, batch)}`);
    });
}

