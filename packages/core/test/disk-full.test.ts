import '@tensorflow/tfjs-backend-cpu';
import { open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mountSmallDisk } from '../../../test-support/tmpfs.js';
import { DiskFullError } from '../src/disk-full.js';
import { useCpuBackend, lossTrace, pointTrainer } from '../src/testing.js';

beforeAll(useCpuBackend);

/** Writes zeros until the filesystem refuses: nothing is free afterwards. */
async function fillDisk(file: string): Promise<void> {
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) await handle.write(chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await readFile(join(entry.parentPath, entry.name))).byteLength;
  }
  return total;
}

describe('disk full', () => {
  it('a checkpoint that does not fit: one line naming the file and the space, no temp files, the previous one resumes exactly', async (ctx) => {
    const mountPoint = mountSmallDisk('1m', ctx).path;
    const whole = await lossTrace(pointTrainer());
    const dir = join(mountPoint, 'checkpoints');
    const t = pointTrainer({ checkpoint: { dir, every: 1 } });
    t.on('step:end', async ({ step }) => {
      if (step === 3) await fillDisk(join(mountPoint, 'filler'));
    });
    const error = await t.train().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiskFullError);
    // Checkpoints of one model at steps 2 and 3 have the same byte count (same shapes, same number widths).
    const needed = await folderBytes(join(dir, 'step-000002'));
    expect((error as Error).message).toBe(
      `Disk full: could not write ${join(dir, 'step-000003', 'generator', 'model.json')} ` +
        `(the checkpoint needs ${needed.toLocaleString('en-US')} bytes, 0 bytes were free); ` +
        `the previous checkpoint ${join(dir, 'step-000002')} is intact`,
    );
    expect((await readdir(dir)).sort()).toEqual(['latest', 'step-000001', 'step-000002']);
    expect((await readFile(join(dir, 'latest'), 'utf8')).trim()).toBe('step-000002');

    await rm(join(mountPoint, 'filler'));
    const resumed = pointTrainer();
    await resumed.restore(dir);
    expect(await lossTrace(resumed)).toEqual(whole.slice(2));
  });
});
