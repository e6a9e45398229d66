import { gantryTsup } from '../../tsup.shared';

// The browser condition of the package's exports points at dist/browser.js (no Node-only readers).
export default gantryTsup({ index: 'src/index.ts', browser: 'src/browser.ts' });
