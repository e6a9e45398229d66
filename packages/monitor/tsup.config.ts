import { gantryTsup } from '../../tsup.shared';

// dist/browser.js is the package's browser condition (diagnostics and charts, no Node-only writers).
export default gantryTsup({ index: 'src/index.ts', browser: 'src/browser.ts', charts: 'src/charts/index.ts' });
