export { FidError } from './errors.js';
export { FeatureStats, featureMoments, featureRows, type FeatureBatch, type FeatureMoments } from './stats.js';
export { frechetDistance, type FrechetResult } from './frechet.js';
export { kernelInceptionDistance, mmdPolynomialUnbiased, type KidOptions, type KidResult } from './kid.js';
export { inceptionScore, type InceptionScoreOptions, type InceptionScoreResult } from './inception-score.js';
export { precisionRecallDensityCoverage, kNearestSquaredRadii, type PrdcOptions, type PrdcResult } from './prdc.js';
export { toFeatureSet, type FeatureSet } from './features.js';
export { gemmNT, traceSqrtProduct, symmetricEigen } from './linalg.js';
export { writeNpy, readNpy, NpyRowWriter, type NpyArray } from './npy.js';
