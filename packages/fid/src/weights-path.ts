import { fileURLToPath } from 'node:url';

/**
 * Folder of the weights shipped with the package. This file sits one level below the package root both as source
 * (src/) and when bundled (dist/), so the same relative URL works for both.
 */
export function bundledWeightsDir(name: string): string {
  return fileURLToPath(new URL(`../weights/${name}/`, import.meta.url));
}
