import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Names of files being written, ending in the writer's pid: `<name>.tmp-<pid>` (`.step-000500.tmp-<pid>`,
 * `report.html.tmp-<pid>`), and the older `.tmp-step-000500-<pid>` and `.latest-<pid>`.
 */
const TEMP_NAME = /^(?:.+\.tmp-|\.tmp-.+-|\.latest-)(\d+)$/;

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A temporary name for `name` that names this process, so leftovers of a killed writer can be recognised. */
export const tempName = (name: string) => `${name}.tmp-${process.pid}`;

/**
 * Removes what killed writers left in `dir`: temporary files and folders whose process no longer runs (a disk kept
 * full by them fails the next write again). Returns the names removed; a missing folder has none.
 */
export async function removeTempLeftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((name) => {
    const pid = TEMP_NAME.exec(name)?.[1];
    return pid !== undefined && (Number(pid) === process.pid || !processAlive(Number(pid)));
  });
  for (const name of stale) await rm(join(dir, name), { recursive: true, force: true });
  return stale;
}
