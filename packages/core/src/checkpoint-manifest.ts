import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Written last into every checkpoint: the size and SHA-256 of each of its other files. */
export const MANIFEST_FILE = 'manifest.json';

interface Manifest {
  files: Record<string, { size: number; sha256: string }>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The manifest of a checkpoint's files (relative paths with `/`), as the text of `manifest.json`. */
export function manifestText(files: ReadonlyMap<string, Uint8Array>): string {
  const manifest: Manifest = { files: {} };
  for (const [path, data] of files) manifest.files[path] = { size: data.byteLength, sha256: sha256(data) };
  return JSON.stringify(manifest, null, 1);
}

/**
 * What is wrong with a checkpoint folder, as `<file> <problem>`, or undefined when every file matches its manifest.
 * Folders written before manifests existed have none and pass (their files are still checked as they load).
 */
export async function checkpointDamage(dir: string): Promise<string | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return `${join(dir, MANIFEST_FILE)} is unreadable (${code ?? (error as Error).message})`;
  }
  for (const [path, expected] of Object.entries(manifest.files ?? {})) {
    const file = join(dir, path);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      return `${file} is missing`;
    }
    if (data.byteLength !== expected.size) return `${file} has ${data.byteLength} bytes, its manifest says ${expected.size}`;
    if (sha256(data) !== expected.sha256) return `${file} does not match its checksum`;
  }
  return undefined;
}
