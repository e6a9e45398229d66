import { statfs } from 'node:fs/promises';
import { GantryError } from './errors.js';

/** A write failed because the disk is full (ENOSPC or EDQUOT): names the file and the space it needed. */
export class DiskFullError extends GantryError {
  override name = 'DiskFullError';
  constructor(
    readonly file: string,
    readonly needed: number,
    readonly free: number | undefined,
    options: { what?: string; detail?: string } = {},
  ) {
    const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;
    super(
      `Disk full: could not write ${file} (${options.what ?? 'it'} needs ${bytes(needed)}` +
        `${free === undefined ? '' : `, ${bytes(free)} were free`})${options.detail ?? ''}`,
    );
  }
}

export const isDiskFull = (error: unknown) => ['ENOSPC', 'EDQUOT'].includes((error as NodeJS.ErrnoException)?.code ?? '');

/** Bytes available to this user on the filesystem holding `path` (undefined when it cannot be asked). */
export async function freeBytes(path: string): Promise<number | undefined> {
  try {
    const stats = await statfs(path);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** Runs a synchronous write of `bytes` to `file`; a full disk becomes a DiskFullError naming them (`what`: "the row"). */
export function writeOrExplain(file: string, bytes: number, what: string, write: () => void): void {
  try {
    write();
  } catch (error) {
    throw isDiskFull(error) ? new DiskFullError(file, bytes, undefined, { what }) : error;
  }
}
