export {
  SpectralNormalization,
  spectralNormalization,
  isEligibleLayer,
  type SpectralNormalizationArgs,
} from './layer.js';
export { spectralNormalize, spectralNormLayers, type SpectralNormalizeOptions } from './normalize-model.js';
export { spectralNorm, type SpectralNormPluginOptions } from './plugin.js';
export {
  powerIteration,
  sigmaEstimate,
  kernelAsMatrix,
  outputAxis,
  ELIGIBLE_CLASSES,
  type EligibleClassName,
} from './power-iteration.js';
