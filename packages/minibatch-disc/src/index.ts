export {
  MinibatchDiscrimination,
  minibatchDiscrimination,
  MinibatchStdDev,
  minibatchStdDev,
  effectiveGroupSize,
  type MinibatchDiscriminationArgs,
  type MinibatchStdDevArgs,
} from './layers.js';
