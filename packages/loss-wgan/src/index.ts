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
export {
  r3ganDefaults,
  r3ganSchedule,
  cosineSchedule,
  emaBetaForHalfLife,
  R3GAN_SMALL_IMAGES,
  type R3ganOptions,
  type R3ganPreset,
  type CosineSchedule,
} from './r3gan.js';
