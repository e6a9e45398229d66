import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GantryError } from './errors.js';
import { processAlive, tempName } from './temp-files.js';

/** The lock file of a run folder: one writer at a time. */
export const RUN_LOCK_FILE = 'run.lock';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export interface RunLock {
  readonly file: string;
  /** Removes the lock file (idempotent; also runs when the process exits). */
  release(): void;
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(owner.pid) && typeof owner.host === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the run folder's lock (`run.lock`: pid, host, start time) or refuses with one line naming the process that
 * holds it. A lock left by a process that no longer runs on this host is stale and taken over. The file appears
 * complete or not at all (written aside, then hard-linked into place, which fails if it exists).
 */
export function acquireRunLock(dir: string): RunLock {
  const file = join(dir, RUN_LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const aside = join(dir, `.${tempName(RUN_LOCK_FILE)}`);
  writeFileSync(aside, JSON.stringify(me) + '\n');
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(aside, file);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      }
      const owner = readOwner(file);
      if (owner && (owner.host !== me.host || processAlive(owner.pid))) {
        throw new GantryError(
          `${dir} is in use by process ${owner.pid} on ${owner.host} (since ${owner.since}); ` +
            (owner.host === me.host ? 'wait for it to finish or stop it' : `if that process is gone, delete ${file}`),
        );
      }
      // Stale (its process is gone) or unreadable: take it over.
      unlinkSync(file);
    }
  } finally {
    unlinkSync(aside);
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    if (readOwner(file)?.pid === me.pid) unlinkSync(file);
  };
  process.on('exit', release);
  return { file, release };
}
