import { gantryTsup } from '../../tsup.shared';

// dist/browser.js is the package's browser condition (no node: imports). The testing entry imports the package by
// name (kept external), so it shares the package's one copy of the core.
export default gantryTsup(
  { index: 'src/index.ts', browser: 'src/browser.ts', testing: 'src/testing.ts' },
  { external: ['@gantry/core'] },
);
