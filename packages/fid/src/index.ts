export { FidError } from './errors.js';
export { FeatureStats, featureMoments, featureRows, type FeatureBatch, type FeatureMoments } from './stats.js';
export { frechetDistance, type FrechetResult } from './frechet.js';
export { kernelInceptionDistance, mmdPolynomialUnbiased, type KidOptions, type KidResult } from './kid.js';
export { inceptionScore, type InceptionScoreOptions, type InceptionScoreResult } from './inception-score.js';
export { precisionRecallDensityCoverage, kNearestSquaredRadii, type PrdcOptions, type PrdcResult } from './prdc.js';
export { toFeatureSet, type FeatureSet } from './features.js';
export { gemmNT, traceSqrtProduct, symmetricEigen } from './linalg.js';
export { writeNpy, readNpy, NpyRowWriter, type NpyArray } from '@gantry/core';
export type { FeatureExtractor } from './extractors/types.js';
export { prepareImages, describeResize, type InputSpec } from './extractors/preprocess.js';
export { readModelFile, isGraphModel } from './extractors/model-files.js';
export {
  buildMnistClassifier,
  loadMnistClassifier,
  mnistClassifierDir,
  mnistExtractor,
  MNIST_CLASSIFIER_NAME,
  MNIST_CLASSIFIER_DIMS,
} from './extractors/mnist-classifier.js';
export { inceptionExtractor, type InceptionOptions } from './extractors/inception.js';
export {
  extractFeatures,
  dataSourceImages,
  generatedImages,
  compareSets,
  type ImageBatches,
  type ExtractOptions,
  type ExtractedSet,
  type ImageGenerator,
  type EvaluateOptions,
  type MetricReport,
  type RealSide,
} from './pipeline.js';
export { fid, ClassAgreement, type FidPluginOptions } from './plugin.js';
export { mnistImages, pngFolderImages, listPngFiles, centerCrop, type ImageSet } from './sources.js';
export {
  parseImageSource,
  loadExtractor,
  compareImageSets,
  formatReport,
  reportJson,
  type ImageSourceSpec,
  type CompareImageSetsOptions,
  type ImageSetReport,
} from './compare.js';
