export { unrolled, type UnrolledOptions, type UnrolledMode, type UnrolledPlugin } from './unrolled.js';
export { functionalModel, type FunctionalModel } from './functional.js';
export { copyOptimizer, readUpdateRule, functionalUpdate, adamCorrections, type UpdateRule, type AdamCorrections } from './optimizer.js';
