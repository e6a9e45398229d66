/** A small tmpfs for disk-full tests: a real full disk. Mounting needs root; without it, tests say why they skip. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  /** Where it is mounted. */
  path: string;
  /** Why it could not be mounted (the tests skip with this), or undefined. */
  unavailable?: string;
  /** Changes its size (e.g. to make room for a resume). */
  resize(size: string): void;
  unmount(): void;
}

export function mountSmallDisk(size: string): SmallDisk {
  const path = mkdtempSync(join(tmpdir(), 'gantry-disk-'));
  let unavailable: string | undefined;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (error) {
    const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    unavailable = `cannot mount a ${size} tmpfs to fill (${why}); run the tests as root`;
  }
  return {
    path,
    unavailable,
    resize: (next) => execFileSync('mount', ['-o', `remount,size=${next}`, path]),
    unmount: () => {
      if (!unavailable) execFileSync('umount', [path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}
