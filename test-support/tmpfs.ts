/** A small tmpfs for disk-full tests: a real full disk. Mounting needs root; without it, tests say why they skip. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  /** Where it is mounted. */
  path: string;
  /** Changes its size (e.g. to make room for a resume). */
  resize(size: string): void;
}

/** The parts of vitest's test context used here: skip with a reason, clean up when the test ends (passed or not). */
interface TestContext {
  skip(note?: string): void;
  onTestFinished(fn: () => void): void;
}

/** Mounts a tmpfs of `size` for the running test and unmounts it when the test ends; skips, saying why, without root. */
export function mountSmallDisk(size: string, test: TestContext): SmallDisk {
  const path = mkdtempSync(join(tmpdir(), 'gantry-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    test.skip(`cannot mount a ${size} tmpfs to fill (${why}); run the tests as root`);
  }
  test.onTestFinished(() => {
    execFileSync('umount', [path]);
    rmSync(path, { recursive: true, force: true });
  });
  return { path, resize: (next) => execFileSync('mount', ['-o', `remount,size=${next}`, path]) };
}
