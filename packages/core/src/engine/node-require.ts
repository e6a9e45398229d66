import { createRequire } from 'node:module';

/**
 * A CommonJS `require` that works from the TypeScript source (vitest, tsx), the ESM build and the CJS build: used to
 * locate files inside installed packages (wasm binaries) and to probe optional peers.
 */
export function nodeRequire(): NodeJS.Require {
  if (typeof require === 'function') return require;
  return createRequire(import.meta.url);
}

/** True when `specifier` resolves from here; optional peers that are absent are skipped without a word. */
export function canResolve(specifier: string): boolean {
  try {
    nodeRequire().resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

export function isModuleNotFound(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
