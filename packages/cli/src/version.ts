import { createRequire } from 'node:module';

/** This package's version, read from its package.json (works from src, dist ESM and dist CJS). */
export const GANTRY_VERSION: string = (() => {
  try {
    const require = createRequire(import.meta.url);
    return (require('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
