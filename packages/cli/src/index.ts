export { buildProgram, main, type CommandRegistrar } from './program.js';
export { train, type TrainFlags } from './commands/train.js';
export { sample, type SampleFlags } from './commands/sample.js';
export { experiments, listExperiments, builtinExperiment, defineExperiment } from './experiments/index.js';
export type { Experiment, ExperimentContext, ExperimentSetup, ExperimentDefaults } from './experiments/index.js';
export { loadExperiment, readRunConfig, type RunConfig } from './run-config.js';
