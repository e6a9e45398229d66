import { gantryTsup } from '../../tsup.shared';

// dist/browser.js is the package's browser condition (kernels and reference models, no node: imports).
export default gantryTsup({ index: 'src/index.ts', browser: 'src/browser.ts' });
