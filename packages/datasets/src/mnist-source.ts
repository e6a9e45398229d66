import * as tf from '@tensorflow/tfjs-core';
import { GantryError, Rng, checkOptions, type Batch, type DataSource } from '@gantry/core';
import { shuffledBatchIndices } from './shuffle.js';

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** Row-major uint8 pixels, count × rows × cols. */
  pixels: Uint8Array;
}

/** Parses an IDX3 image file (magic 0x00000803, big-endian sizes). */
export function parseIdxImages(buffer: Uint8Array): IdxImages {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (view.getUint32(0) !== 0x803) throw new GantryError(`Not an IDX image file (magic 0x${view.getUint32(0).toString(16)})`);
  const [count, rows, cols] = [view.getUint32(4), view.getUint32(8), view.getUint32(12)];
  if (buffer.byteLength !== 16 + count * rows * cols) throw new GantryError('IDX image file is truncated');
  return { count, rows, cols, pixels: buffer.subarray(16) };
}

/** Parses an IDX1 label file (magic 0x00000801). */
export function parseIdxLabels(buffer: Uint8Array): Uint8Array {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (view.getUint32(0) !== 0x801) throw new GantryError(`Not an IDX label file (magic 0x${view.getUint32(0).toString(16)})`);
  const count = view.getUint32(4);
  if (buffer.byteLength !== 8 + count) throw new GantryError('IDX label file is truncated');
  return buffer.subarray(8);
}

export type MnistSplit = 'train' | 'test';

export interface MnistArrays extends IdxImages {
  labels: Uint8Array;
}

export interface MnistOptions {
  split?: MnistSplit;
  /** Use only the first N examples. */
  limit?: number;
  /** Keep only these digits. */
  digits?: number[];
  /** Zero-pad 28×28 to this size (e.g. 32 for progressive growing). */
  padTo?: number;
}

/** Pixels of example i scaled to [-1, 1] into `out` at `offset`, zero-padded (to −1) when padTo > 28. */
function writeExample(src: MnistArrays, i: number, out: Float32Array, offset: number, size: number): void {
  const pad = (size - src.rows) >> 1;
  out.fill(-1, offset, offset + size * size);
  for (let r = 0; r < src.rows; r++) {
    for (let c = 0; c < src.cols; c++) {
      out[offset + (r + pad) * size + c + pad] = src.pixels[i * src.rows * src.cols + r * src.cols + c] / 127.5 - 1;
    }
  }
}

/** Rejects unknown options and splits (before anything is read); returns the split. */
export function checkMnistOptions(options: MnistOptions): MnistSplit {
  checkOptions('mnist()', options, ['split', 'limit', 'digits', 'padTo']);
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new GantryError(`mnist(): split must be "train" or "test", got "${split}"`);
  return split;
}

export type MnistSource = DataSource & { size: number; images(indices: number[]): tf.Tensor4D };

/**
 * MNIST arrays as a resumable DataSource: images [B, 28, 28, 1] in [-1, 1] and int32 labels, shuffled per epoch from
 * the seed, so batch k of a run is the same whether or not the run was resumed. Browser-safe: the arrays come from
 * `loadMnistArrays` in Node or from the page's static files in the playground. `split` only names the source.
 */
export function mnistSource(arrays: MnistArrays, options: MnistOptions = {}): MnistSource {
  const split = checkMnistOptions(options);
  const size = options.padTo ?? arrays.rows;
  if (size < arrays.rows) throw new GantryError(`mnist(): padTo must be ≥ ${arrays.rows}`);
  let indices = Array.from({ length: arrays.count }, (_, i) => i);
  if (options.digits) indices = indices.filter((i) => options.digits!.includes(arrays.labels[i]));
  if (options.limit !== undefined) indices = indices.slice(0, options.limit);
  if (indices.length === 0) throw new GantryError('mnist(): no examples left after limit/digits');

  const images = (chosen: number[]): tf.Tensor4D => {
    const out = new Float32Array(chosen.length * size * size);
    chosen.forEach((k, b) => writeExample(arrays, k, out, b * size * size, size));
    return tf.tensor4d(out, [chosen.length, size, size, 1]);
  };

  return {
    name: `mnist-${split}`,
    elementShape: [size, size, 1],
    numClasses: 10,
    valueRange: [-1, 1],
    size: indices.length,
    images: (chosen) => images(chosen.map((i) => indices[i])),
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (const batch of shuffledBatchIndices(indices.length, batchSize, new Rng(seed), start)) {
        const chosen = batch.map((i) => indices[i]);
        yield { x: images(chosen), labels: tf.tensor1d(chosen.map((k) => arrays.labels[k]), 'int32') };
      }
    },
  };
}
