import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';

export interface EncodedImage {
  png: Buffer;
  width: number;
  height: number;
  /** 1 (grayscale PNG) or 3 (RGB PNG). */
  channels: 1 | 3;
}

export interface GridOptions {
  /** Images per row; default ceil(sqrt(n)). */
  cols?: number;
  /** Pixels between cells; default 2. */
  padding?: number;
}

/** Maps [-1, 1] to 0…255, clamping (a GAN's tanh output may sit exactly on the bounds). */
function toByte(v: number): number {
  if (!Number.isFinite(v)) return 0;
  const b = Math.round(((v + 1) / 2) * 255);
  return b < 0 ? 0 : b > 255 ? 255 : b;
}

function encodePng(rgba: Buffer, width: number, height: number, channels: 1 | 3): Buffer {
  const png = new PNG({ width, height });
  png.data = rgba;
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 });
}

/**
 * Lays out n images of shape [h, w, c] (values in [-1, 1], c = 1 or 3) as a grid PNG, row-major: image i sits in
 * row floor(i / cols), column i % cols. Padding is mid-gray so that it shows on both dark and light images.
 */
export function encodeImageGrid(data: Float32Array, shape: readonly number[], options: GridOptions = {}): EncodedImage {
  const [n, h, w, c = 1] = shape;
  if (shape.length < 3 || shape.length > 4 || ![n, h, w, c].every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`encodeImageGrid: shape must be [n, h, w, c] with positive sizes, got [${shape.join(', ')}]`);
  }
  if (c !== 1 && c !== 3) throw new RangeError(`encodeImageGrid: images need 1 or 3 channels, got ${c}`);
  if (data.length !== n * h * w * c) {
    throw new RangeError(`encodeImageGrid: ${data.length} values do not match shape [${shape.join(', ')}]`);
  }
  const cols = options.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const pad = options.padding ?? 2;
  const width = cols * w + (cols + 1) * pad;
  const height = rows * h + (rows + 1) * pad;
  const rgba = Buffer.alloc(width * height * 4, 128);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (w + pad);
    const y0 = pad + Math.floor(k / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((k * h + y) * w + x) * c;
        const dst = ((y0 + y) * width + x0 + x) * 4;
        if (c === 1) {
          const v = toByte(data[src]);
          rgba[dst] = v;
          rgba[dst + 1] = v;
          rgba[dst + 2] = v;
        } else {
          rgba[dst] = toByte(data[src]);
          rgba[dst + 1] = toByte(data[src + 1]);
          rgba[dst + 2] = toByte(data[src + 2]);
        }
      }
    }
  }
  return { png: encodePng(rgba, width, height, c), width, height, channels: c };
}

export interface ScatterOptions {
  /** Side of the square plot in pixels; default 384. */
  size?: number;
  /** Half-width of the shown square [-range, range]²; default from the points (99th percentile of |coord|, ×1.15). */
  range?: number;
}

/**
 * A scatter plot PNG of 2-D points (x0, y0, x1, y1, …): white background, grid lines at integer coordinates, axes
 * through 0, points as 3×3 dots. y grows upwards as in a math plot.
 */
export function encodeScatterPlot(points: Float32Array, options: ScatterOptions = {}): EncodedImage & { range: number } {
  if (points.length % 2 !== 0) throw new RangeError('encodeScatterPlot: points must be (x, y) pairs');
  const size = options.size ?? 384;
  const range = options.range ?? autoRange(points);
  const rgba = Buffer.alloc(size * size * 4, 255);
  const toPx = (v: number) => Math.round(((v + range) / (2 * range)) * (size - 1));
  const set = (x: number, y: number, r: number, g: number, b: number) => {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    const i = (y * size + x) * 4;
    rgba[i] = r;
    rgba[i + 1] = g;
    rgba[i + 2] = b;
  };
  for (let t = Math.ceil(-range); t <= Math.floor(range); t++) {
    const p = toPx(t);
    const shade = t === 0 ? 150 : 225;
    for (let k = 0; k < size; k++) {
      set(p, k, shade, shade, shade);
      set(k, size - 1 - p, shade, shade, shade);
    }
  }
  for (let i = 0; i < points.length; i += 2) {
    const px = toPx(points[i]);
    const py = size - 1 - toPx(points[i + 1]);
    if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) set(px + dx, py + dy, 31, 119, 180);
  }
  return { png: encodePng(rgba, size, size, 3), width: size, height: size, channels: 3, range };
}

function autoRange(points: Float32Array): number {
  const abs = Array.from(points, (v) => Math.abs(v)).filter(Number.isFinite).sort((a, b) => a - b);
  if (abs.length === 0) return 1;
  const p99 = abs[Math.min(abs.length - 1, Math.floor(abs.length * 0.99))];
  // Round up to a half unit so consecutive plots of a stable model share their scale.
  return Math.max(1, Math.ceil(p99 * 1.15 * 2) / 2);
}

async function toArray(images: Float32Array | tf.Tensor, shape?: readonly number[]) {
  if (images instanceof Float32Array) {
    if (!shape) throw new TypeError('writeImageGrid: a Float32Array needs its shape [n, h, w, c]');
    return { data: images, shape };
  }
  return { data: (await images.data()) as Float32Array, shape: shape ?? images.shape };
}

/**
 * Writes images in [-1, 1] as one grid PNG (grayscale or RGB), or, for 2-D vectors (shape [n, 2]), a scatter plot.
 * The caller keeps ownership of a tensor argument.
 */
export async function writeImageGrid(
  images: Float32Array | tf.Tensor4D | tf.Tensor2D,
  shape: readonly number[] | undefined,
  file: string,
  options: GridOptions & ScatterOptions = {},
): Promise<EncodedImage> {
  const { data, shape: s } = await toArray(images, shape);
  const encoded =
    s.length === 2 && s[1] === 2
      ? encodeScatterPlot(data, options)
      : encodeImageGrid(data, s, { cols: options.cols, padding: options.padding });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encoded.png);
  return encoded;
}
