export { mnist, loadMnistArrays, parseIdxImages, parseIdxLabels, type MnistOptions, type MnistArrays, type MnistSplit } from './mnist.js';
export { imageFolder, readPng, type ImageFolderOptions } from './image-folder.js';
export { ring, grid, countModes, type Mixture2D, type ModeCount } from './toy.js';
export { permutation, shuffledBatchIndices } from './shuffle.js';
