export * from './browser.js';
export { mnist, loadMnistArrays } from './mnist.js';
export { imageFolder, readPng, type ImageFolderOptions } from './image-folder.js';
