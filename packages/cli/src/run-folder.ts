import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireRunLock, GantryError, RUN_LOCK_FILE, removeTempLeftovers, type RunLock } from '@gantry/core';

/** Files that only a run writes: a folder holding any of them is a run, not an empty place for a new one. */
const RUN_MARKERS = ['config.json', 'metrics.jsonl', 'checkpoints'];

export const isRunFolder = (dir: string) => RUN_MARKERS.some((name) => existsSync(join(dir, name)));

/**
 * Takes a run folder for writing: creates it, takes its lock (a second writer refuses), refuses to start a new run
 * over an existing one unless `overwrite` (then empties it first), and removes temporary files that killed runs
 * left. Call it after every input has been validated: nothing in the folder changes before this.
 */
export async function claimRunFolder(runDir: string, mode: { resume: boolean; overwrite?: boolean }): Promise<RunLock> {
  await mkdir(runDir, { recursive: true });
  const lock = acquireRunLock(runDir);
  try {
    if (!mode.resume && isRunFolder(runDir)) {
      if (!mode.overwrite) {
        throw new GantryError(`${runDir} already holds a run: continue it with --resume ${runDir}, or pass --overwrite to replace it`);
      }
      for (const name of await readdir(runDir)) {
        if (name !== RUN_LOCK_FILE) await rm(join(runDir, name), { recursive: true, force: true });
      }
    }
    await removeTempLeftovers(runDir);
    return lock;
  } catch (error) {
    lock.release();
    throw error;
  }
}
