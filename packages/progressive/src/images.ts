import * as tf from '@tensorflow/tfjs-core';
import { GantryError } from '@gantry/core';

/** Pads NHWC images symmetrically to size × size with `value` (-1 is black for data in [-1, 1]): MNIST 28 → 32. */
export function padImages(x: tf.Tensor, size: number, value = -1): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (x.rank !== 4) throw new GantryError(`padImages expects NHWC images, got shape [${x.shape}]`);
  if (h > size || w > size) throw new GantryError(`padImages: images are ${h}×${w}, larger than ${size}×${size}`);
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  return tf.pad(x as tf.Tensor4D, [
    [0, 0],
    [top, size - h - top],
    [left, size - w - left],
    [0, 0],
  ], value);
}

/** Average-pools NHWC images down to size × size (the side must be a multiple of `size`). */
export function downsample(x: tf.Tensor4D, size: number): tf.Tensor4D {
  const side = x.shape[1];
  if (side === size) return x.clone();
  if (side % size !== 0 || x.shape[2] !== side) {
    throw new GantryError(`downsample: cannot average-pool ${x.shape[1]}×${x.shape[2]} images to ${size}×${size}`);
  }
  const factor = side / size;
  return tf.avgPool(x, factor, factor, 'valid');
}

/** Nearest-neighbour 2× upsampling (each pixel becomes a 2×2 block), as UpSampling2D does. */
export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  // Not a rank-6 tile: WebGPU's Tile falls back to the CPU from rank 5 on, which cannot read GPU data in Node.
  return tf.image.resizeNearestNeighbor(x, [2 * h, 2 * w]);
}

/**
 * Real images at `size`, as the generator produces them during a fade: (1 − α)·upsample(pool(x)) + α·x, where
 * pool(x) is x at half the size. α = 1 leaves x as it is.
 */
export function fadeReal(x: tf.Tensor4D, alpha: number): tf.Tensor4D {
  if (alpha >= 1) return x.clone();
  return tf.tidy(() => {
    const low = upsample2x(tf.avgPool(x, 2, 2, 'valid'));
    return tf.add(tf.mul(low, 1 - alpha), tf.mul(x, alpha)) as tf.Tensor4D;
  });
}
