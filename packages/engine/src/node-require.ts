import { createRequire } from 'node:module';

let cached: NodeJS.Require | undefined;

/**
 * A CommonJS `require` anchored at this module, in the TypeScript source (vitest, tsx), the ESM build and the CJS
 * build (tsup's shims provide `import.meta.url` there): used to locate files inside installed packages (wasm
 * binaries) and to probe optional peers. Not the bare `require` identifier: bundlers replace it in ESM output with
 * a stub that has no `resolve`.
 */
export function nodeRequire(): NodeJS.Require {
  cached ??= createRequire(import.meta.url);
  return cached;
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
