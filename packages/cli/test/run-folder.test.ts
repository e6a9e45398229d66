import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { acquireRunLock } from '@gantry/core';
import { mountSmallDisk } from '../../../test-support/tmpfs.js';
import { buildProgram, train } from '../src/index.js';

const quiet = { backend: 'cpu', quiet: true, batch: 32 } as const;
const newRun = async () => join(await mkdtemp(join(tmpdir(), 'gantry-runfolder-')), 'run');

/** Every file of a folder with its bytes, to show that a refused command changed nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files[path.slice(dir.length)] = (await readFile(path)).toString('base64');
    }
  }
  return files;
}

const stepRows = async (out: string) =>
  (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.kind === undefined)
    .map((r) => [r.step, r.d_loss, r.g_loss]);

/** A pid that surely runs no process any more. */
const deadPid = () => spawnSync('true').pid!;

describe('a run folder is never damaged by a new command', () => {
  it('train --out onto an existing run refuses with one line and changes nothing; --overwrite replaces it', async () => {
    const out = await newRun();
    await train('ring-gan', { ...quiet, steps: 4, out, checkpointEvery: 2 });
    const before = await snapshot(out);
    await expect(train('ring-gan', { ...quiet, steps: 2, out })).rejects.toThrow(
      `${out} already holds a run: continue it with --resume ${out}, or pass --overwrite to replace it`,
    );
    expect(await snapshot(out)).toEqual(before);

    await train('ring-gan', { ...quiet, steps: 2, out, seed: 3, overwrite: true });
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))).toMatchObject({ steps: 2, seed: 3 });
    expect((await stepRows(out)).map((r) => r[0])).toEqual([1, 2]);
    expect(await readdir(join(out, 'checkpoints'))).toEqual(['latest', 'step-000002']);
  });

  it('a second writer refuses while the run is locked; a stale lock (its process gone) is taken over', async () => {
    const out = await newRun();
    await train('ring-gan', { ...quiet, steps: 2, out });
    const lock = acquireRunLock(out);
    const before = await snapshot(out);
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 4 })).rejects.toThrow(
      new RegExp(`^${out} is in use by process ${process.pid} on ${hostname()} \\(since .+\\); wait for it to finish or stop it$`),
    );
    expect(await snapshot(out)).toEqual(before);
    lock.release();

    await writeFile(join(out, 'run.lock'), JSON.stringify({ pid: deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    await train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 4 });
    expect((await stepRows(out)).map((r) => r[0])).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
  });

  it('two resumes of one run at once: one trains, the other refuses, no duplicate rows', async () => {
    const out = await newRun();
    // The fixture's 500 ms steps make the winner hold the lock for seconds, longer than the two start-ups differ.
    await train(join(__dirname, 'fixtures/slow-ring.ts'), { ...quiet, steps: 1, out });
    const bin = join(__dirname, '../src/bin.ts');
    const run = () =>
      new Promise<{ code: number | null; err: string }>((done) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@gantry/source', bin, 'train', '--resume', out, '--steps', '8', '--backend', 'cpu', '--quiet'], {
          env: { ...process.env, SLOW_STEP_MS: '500' },
        });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => done({ code, err }));
      });
    const results = await Promise.all([run(), run()]);
    const refused = results.filter((r) => r.code !== 0);
    expect(refused, JSON.stringify(results)).toHaveLength(1);
    expect(refused[0].err).toMatch(new RegExp(`^gantry: ${out} is in use by process \\d+ on ${hostname()} \\(since .+\\); wait for it to finish or stop it\\n$`));
    expect((await stepRows(out)).map((r) => r[0])).toEqual(Array.from({ length: 8 }, (_, i) => i + 1));
  }, 120_000);

  it('temporary files of killed writers are removed when a run resumes; a live writer\'s are kept', async () => {
    const out = await newRun();
    await train('ring-gan', { ...quiet, steps: 2, out });
    const dead = deadPid();
    const leftovers = [`checkpoints/.tmp-step-000003-${dead}`, `checkpoints/.step-000003.tmp-${dead}`, `checkpoints/.latest-${dead}`];
    for (const dir of leftovers) await mkdir(join(out, dir), { recursive: true });
    await writeFile(join(out, `report.html.tmp-${dead}`), 'half a report');
    const live = spawn('sleep', ['30']);
    await writeFile(join(out, `report.html.tmp-${live.pid}`), 'being written');
    await train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 3 });
    live.kill();
    for (const name of [...leftovers, `report.html.tmp-${dead}`]) expect(existsSync(join(out, name)), name).toBe(false);
    expect(existsSync(join(out, `report.html.tmp-${live.pid}`))).toBe(true);
  });
});

describe('damaged run files', () => {
  it('an invalid config.json refuses with one line naming it, and nothing is rewritten', async () => {
    const out = await newRun();
    await train('ring-gan', { ...quiet, steps: 2, out });
    await writeFile(join(out, 'config.json'), '{"experiment": "ring-gan", "steps": 2,');  // cut short
    const before = await snapshot(out);
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 4 })).rejects.toThrow(
      `${join(out, 'config.json')} is damaged: Expected double-quoted property name in JSON at position 38`,
    );
    await writeFile(join(out, 'config.json'), '{"experiment": "ring-gan", "steps": 2}');
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 4 })).rejects.toThrow(
      `${join(out, 'config.json')} is damaged: "batchSize" must be a positive integer, not undefined`,
    );
    expect(await snapshot(out)).toEqual({ ...before, '/config.json': Buffer.from('{"experiment": "ring-gan", "steps": 2}').toString('base64') });
  });

  it('--resume over a truncated newest checkpoint says so in one line and continues exactly from the one before', async () => {
    const root = await newRun();
    const whole = `${root}-whole`;
    await train('ring-gan', { ...quiet, steps: 6, out: whole, checkpointEvery: 2 });
    const out = root;
    await train('ring-gan', { ...quiet, steps: 4, out, checkpointEvery: 2 });
    const state = join(out, 'checkpoints', 'step-000004', 'state.json');
    await truncate(state, 10);
    const lines: string[] = [];
    const errors = vi.spyOn(console, 'error').mockImplementation((line) => void lines.push(String(line)));
    try {
      await train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 6 });
    } finally {
      errors.mockRestore();
    }
    expect(lines.filter((l) => l.includes('damaged'))).toEqual([
      expect.stringMatching(
        new RegExp(`^gantry: Checkpoint ${join(out, 'checkpoints', 'step-000004')} is damaged \\(${state} has 10 bytes, its manifest says \\d+\\); using ${join(out, 'checkpoints', 'step-000002')}, the newest intact one$`),
      ),
    ]);
    // Rows of steps 3 and 4 appear twice (readers take the latest); the resumed ones equal the uninterrupted run.
    const rows = await stepRows(out);
    expect(rows.slice(4)).toEqual((await stepRows(whole)).slice(2));
  });
});

describe('disk full', () => {
  it('one line naming the file and the space needed, no temp files left, and a resume in place continues exactly', async (ctx) => {
    const disk = mountSmallDisk('2m', ctx);
    const flags = { ...quiet, batch: 16, checkpointEvery: 1, sampleEvery: 1000 };
    const whole = join(await mkdtemp(join(tmpdir(), 'gantry-whole-')), 'run');
    await train('ring-gan', { ...flags, steps: 8, out: whole });
    const out = join(disk.path, 'run');
    // ring-gan checkpoints are ~0.6 MB (weights and Adam's two moments): three fit in 2 MiB, a fourth does not.
    const error = (await train('ring-gan', { ...flags, steps: 8, out }).catch((e: unknown) => e)) as Error;
    const latest = (await readFile(join(out, 'checkpoints', 'latest'), 'utf8')).trim();
    const failed = `step-${String(Number(latest.slice(5)) + 1).padStart(6, '0')}`;
    expect(error.message).toMatch(
      new RegExp(
        `^Disk full: could not write ${join(out, 'checkpoints', failed)}/[a-z/-]+\\.(json|bin) \\(the checkpoint needs [\\d,]+ bytes, [\\d,]+ bytes were free\\); ` +
          `the previous checkpoint ${join(out, 'checkpoints', latest)} is intact$`,
      ),
    );
    const names = [...(await readdir(out)), ...(await readdir(join(out, 'checkpoints')))];
    expect(names.filter((n) => n.includes('.tmp'))).toEqual([]);

    disk.resize('8m');
    await train(undefined, { backend: 'cpu', quiet: true, resume: out, steps: 8 });
    const resumed = await stepRows(out);
    expect(resumed.slice(-8 + Number(latest.slice(5)))).toEqual((await stepRows(whole)).slice(Number(latest.slice(5))));
  });
});

describe('bad input gets one line before anything is written', () => {
  /** Runs the CLI in-process; returns what it printed to stderr (commander's parse errors included). */
  async function cli(...args: string[]): Promise<string> {
    let err = '';
    const program = buildProgram();
    for (const command of [program, ...program.commands]) {
      command.exitOverride().configureOutput({ writeErr: (text) => (err += text), writeOut: () => undefined });
    }
    await program.parseAsync(['node', 'gantry', ...args]).catch(() => undefined);
    return err;
  }

  it.each([
    ['--steps', "error: option '--steps <n>' argument '0' is invalid. --steps must be a positive integer (--help lists the options)\n"],
    ['--batch', "error: option '--batch <n>' argument '0' is invalid. --batch must be a positive integer (--help lists the options)\n"],
  ])('%s 0', async (flag, line) => {
    const out = await newRun();
    // Exactly one line: the problem and where the options are.
    expect(await cli('train', 'ring-gan', flag, '0', '--backend', 'cpu', '--quiet', '--out', out)).toBe(line);
    expect(existsSync(out)).toBe(false);
  });

  it('the same from the train() API, and a resume with nothing left to train', async () => {
    const out = await newRun();
    await expect(train('ring-gan', { ...quiet, steps: 0, out })).rejects.toThrow('Invalid run settings: "steps" must be a positive integer, not 0');
    await expect(train('ring-gan', { ...quiet, batch: 0, steps: 2, out })).rejects.toThrow(
      'Invalid run settings: "batchSize" must be a positive integer, not 0',
    );
    expect(existsSync(out)).toBe(false);
    await train('ring-gan', { ...quiet, steps: 2, out });
    const before = await snapshot(out);
    await expect(train(undefined, { backend: 'cpu', quiet: true, resume: out })).rejects.toThrow(
      `${out} is at step 2 already; pass --steps above 2 to train further`,
    );
    expect(await snapshot(out)).toEqual(before);
  });
});
