/**
 * The reference DCGAN step of this tree against the same step at an older commit, in one run (a benchmark, not a
 * test): `gantry bench --json` in each tree, alternating, round after round, so that both see the same machine.
 * A shared machine's speed moves by tens of percent within a day (ENGINE.md), so a target set in milliseconds on one
 * day is checked here as a ratio to the code it was set against. The older commit gets a detached worktree in the
 * temp folder with its own `npm ci` (kept for the next run).
 *
 *   npx tsx --conditions=@gantry/source scripts/bench-commits.ts 4ef64fa --backend wasm --threads 2 --rounds 6
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';

const program = new Command()
  .argument('<commit>', 'the older commit to compare with (anything git rev-parse takes)')
  .option('--backend <name>', 'backend for both trees', 'wasm')
  .option('--threads <n>', 'threads for both trees', '2')
  .option('--loss <name>', 'only this loss (default: both)')
  .option('--steps <n>', 'timed steps per bench', '20')
  .option('--warmup <n>', 'untimed steps per bench', '3')
  .option('--rounds <n>', 'rounds; each runs both trees, the order swapped every round', '4')
  .parse();
const [commitArg] = program.args;
const opts = program.opts<{ backend: string; threads: string; loss?: string; steps: string; warmup: string; rounds: string }>();
const rounds = Number(opts.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${opts.rounds}`);

const here = resolve(new URL('..', import.meta.url).pathname);
const git = (...args: string[]) => execFileSync('git', args, { cwd: here, encoding: 'utf8' }).trim();
const commit = git('rev-parse', '--short', `${commitArg}^{commit}`);
const old = join(tmpdir(), `gantry-bench-${commit}`);
if (!existsSync(join(old, 'package.json'))) git('worktree', 'add', '--detach', old, commit);
if (!existsSync(join(old, 'node_modules'))) {
  console.log(`npm ci in ${old} …`);
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: old, stdio: ['ignore', 'ignore', 'inherit'] });
}

interface Row { loss: string; ms_per_step: number; cpu_ms_per_step: number }
const benchArgs = ['run', '-s', 'gantry', '--', 'bench', '--json', '--backend', opts.backend, '--threads', opts.threads,
  '--steps', opts.steps, '--warmup', opts.warmup, ...(opts.loss ? ['--loss', opts.loss] : [])];
/** Trees whose bench adds a PyTorch row unless told not to. */
function hasTorchRow(dir: string): boolean {
  const file = join(dir, 'packages/cli/src/commands/bench.ts');
  return existsSync(file) && readFileSync(file, 'utf8').includes("'--no-torch'");
}
/** One bench in `dir`: the JSON lines of its backend's rows. */
function bench(dir: string, noTorch: boolean): Row[] {
  const args = [...benchArgs, ...(noTorch ? ['--no-torch'] : [])];
  const out = execFileSync('npm', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Row & { backend: string })
    .filter((row) => row.backend === opts.backend);
}

const trees = { now: here, [commit]: old } as Record<string, string>;
const noTorch = Object.fromEntries(Object.entries(trees).map(([name, dir]) => [name, hasTorchRow(dir)]));
const results: Record<string, Row[][]> = { now: [], [commit]: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? [commit, 'now'] : ['now', commit];
  for (const name of order) results[name].push(bench(trees[name], noTorch[name]));
  const line = Object.entries(results).map(([name, runs]) => `${name} ${runs[r].map((x) => `${x.loss} ${x.ms_per_step}`).join(', ')}`);
  console.log(`round ${r + 1} (load ${loadavg()[0].toFixed(2)}): ${line.join(' | ')}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
console.log(`\n| ${opts.backend}, ${opts.threads} threads | ms per step, now | ms per step, ${commit} | now / ${commit}, per round | median ratio |`);
console.log('| --- | --- | --- | --- | --- |');
for (const loss of results.now[0].map((x) => x.loss)) {
  const pick = (name: string) => results[name].map((run) => run.find((x) => x.loss === loss)!.ms_per_step);
  const [a, b] = [pick('now'), pick(commit)];
  const ratios = a.map((x, i) => x / b[i]);
  console.log(`| ${loss} | ${a.join(', ')} | ${b.join(', ')} | ${ratios.map((x) => x.toFixed(3)).join(', ')} | ${median(ratios).toFixed(3)} |`);
}
