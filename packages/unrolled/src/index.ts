export { unrolled, type UnrolledOptions, type UnrolledMode, type UnrolledPlugin } from './unrolled.js';
export { functionalModel, type FunctionalModel } from './functional.js';
export { copyOptimizer, readUpdateRule, functionalUpdate, type UpdateRule } from './optimizer.js';
