import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PtyCommand, waitForExit, waitForFile } from './pty.js';

// The real commands in a pseudo-terminal, stopped the ways people stop them. The fixture's steps take 300 ms, ten
// times the grace period of tsx's signal relay that used to SIGKILL training under `npm start`.
const repo = resolve(__dirname, '../../..');
const fixture = resolve(__dirname, 'fixtures/slow-ring.ts');
const distBin = resolve(__dirname, '../dist/bin.js');
const trainArgs = (out: string) => `train ${fixture} --backend cpu --quiet --out ${out}`;
// `exec`: npm leads the terminal's foreground group, as under an interactive shell's job control. Without it the
// non-interactive `sh -c` that `script` starts (dash in CI) stays in between and dies of the signal at once.
const viaNpm = (out: string) => `exec npm run --silent gantry -- ${trainArgs(out)}`;
const viaNode = (out: string) => `exec ${process.execPath} --import tsx --conditions=@gantry/source packages/cli/src/bin.ts ${trainArgs(out)}`;
const newRun = async () => join(await mkdtemp(join(tmpdir(), 'gantry-signal-')), 'run');

/** What a stopped run must hold: the last checkpoint named by `latest`, metrics up to that step, and the report. */
function expectStoppedRun(out: string, output?: string): number {
  const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
  expect(latest).toMatch(/^step-\d{6}$/);
  const step = Number(latest.slice(5));
  expect(step).toBeGreaterThan(0);
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(rows.filter((r) => r.kind === undefined).at(-1).step).toBe(step);
  expect(existsSync(join(out, 'report.html'))).toBe(true);
  if (output !== undefined) {
    expect(output).toContain(`Stopped at step ${step}. Run folder: ${out}`);
    expect(output).toContain(`Latest checkpoint: ${join(out, 'checkpoints', latest)}`);
  }
  return step;
}

describe('stopping a run in a terminal', () => {
  it.each([
    ['Ctrl-C under `npm run gantry`', viaNpm, 'SIGINT', (run: PtyCommand): void => run.ctrlC()],
    ['SIGTERM to the whole group under npm (docker stop, systemd, timeout)', viaNpm, 'SIGTERM', (run: PtyCommand): void => void process.kill(-run.group(), 'SIGTERM')],
    ['SIGHUP to the process group', viaNode, 'SIGHUP', (run: PtyCommand): void => void process.kill(-run.group(), 'SIGHUP')],
  ] as const)('%s: the step finishes, checkpoint and report are written, exit 0', async (_, command, signal, stop) => {
    const out = await newRun();
    const run = new PtyCommand(command(out), { cwd: repo });
    await waitForFile(join(out, 'metrics.jsonl'));
    stop(run);
    expect(await run.exited, run.output).toBe(0);
    expect(run.output).toContain(`${signal}: finishing this step and writing a checkpoint (again to abort)`);
    expectStoppedRun(out, run.output);
  }, 60_000);

  it('a closed terminal under npm (ssh drop) still leaves a checkpoint and the report, and every process ends', async () => {
    const out = await newRun();
    const run = new PtyCommand(viaNpm(out), { cwd: repo });
    await waitForFile(join(out, 'metrics.jsonl'));
    const members = run.groupMembers();
    expect(members.length).toBeGreaterThanOrEqual(2);
    run.hangUp();
    // npm dies of the SIGHUP; node must finish its step and checkpoint though every write to the terminal fails (EIO).
    await waitForExit(members);
    expectStoppedRun(out);
  }, 60_000);

  it('a second Ctrl-C a second after the first aborts without waiting for the step', async () => {
    const out = await newRun();
    const run = new PtyCommand(viaNode(out), { cwd: repo, env: { SLOW_STEP_MS: '3000' } });
    await waitForFile(join(out, 'metrics.jsonl'));
    const first = Date.now();
    run.ctrlC();
    await new Promise((r) => setTimeout(r, 1200));
    run.ctrlC();
    expect(await run.exited, run.output).toBe(130);
    // The step in progress had ~2.9 s to go when the first Ctrl-C came.
    expect(Date.now() - first).toBeLessThan(2500);
  }, 60_000);

  it.skipIf(!existsSync(distBin))('the built gantry binary stops the same way on Ctrl-C', async () => {
    const out = await newRun();
    const run = new PtyCommand(`exec ${process.execPath} ${distBin} ${trainArgs(out).replace(fixture, 'ring-gan --batch 16')}`, { cwd: repo });
    await waitForFile(join(out, 'metrics.jsonl'));
    run.ctrlC();
    expect(await run.exited, run.output).toBe(0);
    expectStoppedRun(out, run.output);
  }, 60_000);
});
