import { gantryTsup } from '../../tsup.shared';

// shims: the bundled weights are located through import.meta.url, which the CJS build needs shimmed.
export default gantryTsup({ index: 'src/index.ts' }, { shims: true });
