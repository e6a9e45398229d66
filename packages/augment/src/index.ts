export {
  diffAugment,
  applyDiffAugment,
  drawDiffAugment,
  parsePolicy,
  type DiffAugmentOptions,
  type DiffAugmentParams,
  type DiffAugmentPolicy,
} from './diffaugment.js';
export {
  ada,
  adaStep,
  applyAda,
  drawAda,
  ADA_TRANSFORMS,
  IDENTITY,
  type AdaOptions,
  type AdaPlugin,
  type AdaImageParams,
  type AdaTransform,
} from './ada.js';
export { resampleSeparable, rotateSmall, shear, transposeWhere, writeInterpolation, type Boundary, type SampleMap } from './resample.js';
