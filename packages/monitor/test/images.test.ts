import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeImageGrid, encodeScatterPlot, writeImageGrid } from '../src/images.js';
import { gridLabels } from '../src/plugins/grid-labels.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const decode = (png: Buffer) => PNG.sync.read(png);
const pixel = (img: PNG, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 3));

describe('encodeImageGrid', () => {
  it('maps [-1, 1] to 0..255 and lays images out row-major with padding', () => {
    // 3 grayscale 2×2 images: all -1, all 0, all 1; 2 columns, padding 1.
    const data = new Float32Array([-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1]);
    const { png, width, height, channels } = encodeImageGrid(data, [3, 2, 2, 1], { cols: 2, padding: 1 });
    expect([width, height, channels]).toEqual([2 * 2 + 3, 2 * 2 + 3, 1]);
    const img = decode(png);
    expect(pixel(img, 1, 1)).toEqual([0, 0, 0]); // image 0 at (1, 1)
    expect(pixel(img, 4, 1)).toEqual([128, 128, 128]); // image 1 at (4, 1): round(0.5 · 255)
    expect(pixel(img, 1, 4)).toEqual([255, 255, 255]); // image 2 at (1, 4), second row
    expect(pixel(img, 4, 4)).toEqual([128, 128, 128]); // empty cell shows the padding gray
    // Written as an 8-bit grayscale PNG (color type 0 in the IHDR chunk).
    expect(png[25]).toBe(0);
  });

  it('writes RGB images channel by channel and clamps out-of-range values', () => {
    const data = new Float32Array([1, -1, 0, 2, -2, NaN]);
    const { png, channels } = encodeImageGrid(data, [1, 1, 2, 3], { padding: 0 });
    expect(channels).toBe(3);
    expect(png[25]).toBe(2); // RGB color type
    const img = decode(png);
    expect(pixel(img, 0, 0)).toEqual([255, 0, 128]);
    expect(pixel(img, 1, 0)).toEqual([255, 0, 0]);
  });

  it('rejects shapes that do not match the data', () => {
    expect(() => encodeImageGrid(new Float32Array(5), [1, 2, 2, 1])).toThrow(/do not match/);
    expect(() => encodeImageGrid(new Float32Array(8), [1, 2, 2, 2])).toThrow(/1 or 3 channels/);
  });
});

describe('encodeScatterPlot', () => {
  it('puts points where their coordinates say, y up', () => {
    const { png, range } = encodeScatterPlot(new Float32Array([0, 0, 1, 1]), { size: 101, range: 2 });
    expect(range).toBe(2);
    const img = decode(png);
    const blue = [31, 119, 180];
    expect(pixel(img, 50, 50)).toEqual(blue); // (0, 0) at the centre
    expect(pixel(img, 75, 25)).toEqual(blue); // (1, 1): right and up
    expect(pixel(img, 25, 75)).not.toEqual(blue); // nothing at (-1, -1)
    expect(pixel(img, 10, 90)).toEqual([255, 255, 255]);
  });

  it('chooses a range that contains the points', () => {
    const ring = new Float32Array(Array.from({ length: 64 }, (_, i) => [2 * Math.cos(i), 2 * Math.sin(i)]).flat());
    expect(encodeScatterPlot(ring).range).toBe(2.5);
  });
});

describe('writeImageGrid', () => {
  it('writes a tensor as a PNG file and leaves the tensor to its owner', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-img-')), 'sub', 'grid.png');
    const images = tf.fill([4, 3, 3, 1], 1) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const out = await writeImageGrid(images, undefined, file, { padding: 0 });
    expect(tf.memory().numTensors).toBe(before);
    expect(images.isDisposed).toBe(false);
    images.dispose();
    expect([out.width, out.height]).toEqual([6, 6]);
    expect(pixel(decode(fs.readFileSync(file)), 5, 5)).toEqual([255, 255, 255]);
  });

  it('draws [n, 2] data as a scatter plot', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-img-')), 'ring.png');
    const out = await writeImageGrid(new Float32Array([0.5, 0.5]), [1, 2], file, { size: 64 });
    expect([out.width, out.height, out.channels]).toEqual([64, 64, 3]);
  });
});

describe('gridLabels', () => {
  it('cycles classes by row', () => {
    expect(Array.from(gridLabels(9, 3, 2))).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0]);
  });
});
