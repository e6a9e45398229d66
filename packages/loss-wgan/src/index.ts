export { wgan, wganDefaults, wganGpDefaults, lazyAdam, type WganPreset } from './loss.js';
export { weightClipping, clipWeights, type WeightClippingOptions } from './clipping.js';
export {
  gradientPenalty,
  gradientPenaltyLoss,
  interpolationWeights,
  inputGradients,
  r1,
  r2,
  type Discriminate,
  type GradientPenaltyOptions,
  type GradientRegularizerOptions,
} from './penalties.js';
