export { labelSmoothing, realTargetCorrection, type LabelSmoothingOptions } from './label-smoothing.js';
export {
  instanceNoise,
  annealedSigma,
  InstanceNoise,
  type InstanceNoiseOptions,
  type InstanceNoisePlugin,
} from './instance-noise.js';
export { ema, cloneModel, type EmaOptions, type EmaPlugin } from './ema.js';
export { gradClip, globalNorm, clipByGlobalNorm, type GradClipOptions } from './grad-clip.js';
export {
  featureMatching,
  featureModel,
  featureMatchingLoss,
  type FeatureMatchingOptions,
} from './feature-matching.js';
export { adaptiveBalance, type AdaptiveBalanceOptions, type AdaptiveBalancePlugin } from './adaptive-balance.js';
export { lecam, type LecamOptions, type LecamPlugin } from './lecam.js';
export { auxiliaryClassifier, classCrossEntropy, type AuxiliaryClassifierOptions } from './auxiliary-classifier.js';
