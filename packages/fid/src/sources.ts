import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadMnistArrays, readPng, type MnistSplit } from '@gantry/datasets';
import { FidError } from './errors.js';

/** A finite, ordered set of images that can be streamed in batches. */
export interface ImageSet {
  /** Describes where the images come from, e.g. "mnist:test (first 10000)". */
  readonly label: string;
  readonly count: number;
  /** Shape of one image, [H, W, C]. */
  readonly imageShape: readonly number[];
  batches(batchSize?: number): AsyncGenerator<tf.Tensor4D>;
}

/** The first `n` images (default all) of an MNIST split, in file order, as [B, 28, 28, 1] in [-1, 1]. */
export function mnistImages(split: MnistSplit, n?: number): ImageSet {
  const arrays = loadMnistArrays(split);
  const count = n ?? arrays.count;
  if (!(count > 0)) throw new FidError(`mnist:${split} needs a positive count, got ${n}`);
  if (count > arrays.count) throw new FidError(`mnist:${split} has ${arrays.count} images, not the ${count} asked for`);
  const size = arrays.rows * arrays.cols;
  return {
    label: `mnist:${split} (first ${count} of ${arrays.count})`,
    count,
    imageShape: [arrays.rows, arrays.cols, 1],
    async *batches(batchSize = 250) {
      for (let start = 0; start < count; start += batchSize) {
        const end = Math.min(count, start + batchSize);
        const pixels = arrays.pixels.subarray(start * size, end * size);
        const x = new Float32Array(pixels.length);
        for (let i = 0; i < x.length; i++) x[i] = pixels[i] / 127.5 - 1;
        yield tf.tensor4d(x, [end - start, arrays.rows, arrays.cols, 1]);
      }
    },
  };
}

/**
 * The centre size × size window of every image of a set that is larger than that (smaller ones pass unchanged), e.g.
 * 28 for MNIST padded to 32: the classifier then sees digits at their own scale, where resizing 32 → 28 would shrink
 * them by an eighth and move the FID.
 */
export function centerCrop(set: ImageSet, size: number): ImageSet {
  const [h, w, c] = set.imageShape;
  if (!Number.isInteger(size) || size < 1) throw new FidError(`crop size must be a positive integer, got ${size}`);
  if (h <= size && w <= size) return set;
  const height = Math.min(h, size);
  const width = Math.min(w, size);
  const top = Math.floor((h - height) / 2);
  const left = Math.floor((w - width) / 2);
  return {
    label: `${set.label}, centre ${height}×${width} crop`,
    count: set.count,
    imageShape: [height, width, c],
    async *batches(batchSize?: number) {
      for await (const batch of set.batches(batchSize)) {
        const cropped = tf.slice(batch, [0, top, left, 0], [-1, height, width, -1]);
        batch.dispose();
        yield cropped;
      }
    },
  };
}

/** PNG files of a folder (sorted by name), or of its subfolders when the folder itself holds none. */
export function listPngFiles(dir: string): string[] {
  const entries = readdirSync(dir).sort();
  const direct = entries.filter((f) => f.toLowerCase().endsWith('.png')).map((f) => join(dir, f));
  if (direct.length > 0) return direct;
  return entries
    .filter((d) => statSync(join(dir, d)).isDirectory())
    .flatMap((d) =>
      readdirSync(join(dir, d))
        .filter((f) => f.toLowerCase().endsWith('.png'))
        .sort()
        .map((f) => join(dir, d, f)),
    );
}

/**
 * The PNGs of a folder (the first `n` by name), decoded a batch at a time (never all held), as 1-channel luma or
 * 3-channel RGB in [-1, 1]. All images must have one size.
 */
export function pngFolderImages(dir: string, options: { n?: number; channels?: 1 | 3 } = {}): ImageSet {
  let files: string[];
  try {
    files = listPngFiles(dir);
  } catch (error) {
    throw new FidError(`cannot read image folder ${dir}: ${(error as Error).message}`);
  }
  if (files.length === 0) throw new FidError(`no PNG images in ${dir}`);
  const count = options.n ?? files.length;
  // Scoring fewer images than asked for would silently change what the number means (FID grows as N shrinks).
  if (count > files.length) throw new FidError(`${dir} has ${files.length} PNGs, not the ${count} asked for`);
  const channels = options.channels ?? 1;
  const first = readPng(files[0], channels);
  return {
    label: `${dir} (${count} of ${files.length} PNGs)`,
    count,
    imageShape: [first.height, first.width, channels],
    async *batches(batchSize = 250) {
      for (let start = 0; start < count; start += batchSize) {
        const end = Math.min(count, start + batchSize);
        const per = first.width * first.height * channels;
        const x = new Float32Array((end - start) * per);
        for (let i = start; i < end; i++) {
          const img = readPng(files[i], channels);
          if (img.width !== first.width || img.height !== first.height) {
            throw new FidError(`${files[i]} is ${img.width}×${img.height} but ${files[0]} is ${first.width}×${first.height}`);
          }
          x.set(img.data, (i - start) * per);
        }
        yield tf.tensor4d(x, [end - start, first.height, first.width, channels]);
      }
    },
  };
}
