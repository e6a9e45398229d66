import { defineConfig, type Options } from 'tsup';

/** One build shape for every package: ESM + CJS + .d.ts, dependencies left external. */
export function gantryTsup(entry: Record<string, string> = { index: 'src/index.ts' }, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    // import.meta.url in the CJS build (createRequire-based file lookups).
    shims: true,
    ...extra,
  });
}
