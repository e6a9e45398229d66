import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { GantryError, Rng, checkOptions, type Batch, type DataSource } from '@gantry/core';
import { shuffledBatchIndices } from './shuffle.js';

export interface ImageFolderOptions {
  /** 1 = grayscale (luma), 3 = RGB. Default 1. */
  channels?: 1 | 3;
  /** Subfolders are classes (sorted names → 0, 1, …). Default: true when the folder has subfolders of PNGs. */
  classFolders?: boolean;
}

function listPngs(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.png'))
    .sort()
    .map((f) => join(dir, f));
}

/** Decodes a PNG into [-1, 1] floats with 1 or 3 channels. */
export function readPng(file: string, channels: 1 | 3): { width: number; height: number; data: Float32Array } {
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(file));
  } catch (error) {
    throw new GantryError(`${file} is not a readable PNG image (${(error as Error).message})`);
  }
  const out = new Float32Array(png.width * png.height * channels);
  for (let p = 0; p < png.width * png.height; p++) {
    const [r, g, b] = [png.data[4 * p], png.data[4 * p + 1], png.data[4 * p + 2]];
    if (channels === 1) out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 127.5 - 1;
    else for (const [c, v] of [r, g, b].entries()) out[3 * p + c] = v / 127.5 - 1;
  }
  return { width: png.width, height: png.height, data: out };
}

/** Every PNG in a folder (or in its class subfolders), loaded once into memory; all images must share one size. */
export function imageFolder(dir: string, options: ImageFolderOptions = {}): DataSource & { size: number } {
  checkOptions('imageFolder()', options, ['channels', 'classFolders']);
  const channels = options.channels ?? 1;
  const subdirs = readdirSync(dir)
    .filter((d) => statSync(join(dir, d)).isDirectory())
    .sort();
  const useClasses = options.classFolders ?? (subdirs.length > 0 && listPngs(dir).length === 0);
  const files: { file: string; label: number }[] = useClasses
    ? subdirs.flatMap((d, label) => listPngs(join(dir, d)).map((file) => ({ file, label })))
    : listPngs(dir).map((file) => ({ file, label: 0 }));
  if (files.length === 0) throw new GantryError(`No PNG images found in ${dir}`);
  const first = readPng(files[0].file, channels);
  const per = first.data.length;
  const pixels = new Float32Array(files.length * per);
  files.forEach(({ file }, i) => {
    const img = i === 0 ? first : readPng(file, channels);
    if (img.width !== first.width || img.height !== first.height) {
      throw new GantryError(`Image ${file} is ${img.width}×${img.height} but ${files[0].file} is ${first.width}×${first.height}`);
    }
    pixels.set(img.data, i * per);
  });
  const shape = [first.height, first.width, channels];
  return {
    name: `images:${dir}`,
    elementShape: shape,
    numClasses: useClasses ? subdirs.length : undefined,
    valueRange: [-1, 1],
    size: files.length,
    *batches({ batchSize, seed, start }): Iterator<Batch> {
      for (const batch of shuffledBatchIndices(files.length, batchSize, new Rng(seed), start)) {
        const x = new Float32Array(batch.length * per);
        batch.forEach((k, b) => x.set(pixels.subarray(k * per, (k + 1) * per), b * per));
        yield {
          x: tf.tensor(x, [batch.length, ...shape]),
          labels: useClasses ? tf.tensor1d(batch.map((k) => files[k].label), 'int32') : undefined,
        };
      }
    },
  };
}
