import { createRequire } from 'node:module';

/** This package's version, read from its package.json (works from src, dist ESM and dist CJS). */
export const GANTRY_VERSION: string = (() => {
  try {
    const require = createRequire(import.meta.url);
    // A bundle (scripts/gpu) may find another package.json here, one without a version.
    const { version } = require('../package.json') as { version?: unknown };
    return typeof version === 'string' ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
