import * as tf from '@tensorflow/tfjs-core';
import { FidError } from '../errors.js';

export interface InputSpec {
  height: number;
  width: number;
  channels: 1 | 3;
}

/**
 * Brings images [B, H, W, C] to a network's input: grayscale ↔ RGB (luma weights 0.299, 0.587, 0.114 for RGB → gray;
 * channel copies for gray → RGB), then bilinear resizing with half-pixel centres (the convention of PyTorch's
 * F.interpolate(align_corners=False) and of PIL, which FID implementations use).
 */
export function prepareImages(images: tf.Tensor4D, spec: InputSpec): tf.Tensor4D {
  if (images.rank !== 4) throw new FidError(`images must be [batch, height, width, channels], got [${images.shape.join(', ')}]`);
  const c = images.shape[3];
  if (c !== 1 && c !== 3) throw new FidError(`images must have 1 or 3 channels, got ${c}`);
  return tf.tidy(() => {
    let x: tf.Tensor4D = images;
    if (c === 3 && spec.channels === 1) {
      x = tf.sum(tf.mul(x, tf.tensor1d([0.299, 0.587, 0.114])), 3, true);
    } else if (c === 1 && spec.channels === 3) {
      x = tf.tile(x, [1, 1, 1, 3]);
    }
    if (x.shape[1] !== spec.height || x.shape[2] !== spec.width) {
      x = tf.image.resizeBilinear(x, [spec.height, spec.width], false, true);
    }
    return x;
  });
}

/** Describes what prepareImages does to images of shape [B, H, W, C] (or of any size when `from` is omitted). */
export function describeResize(spec: InputSpec, from?: readonly number[]): string {
  const target = `${spec.height}×${spec.width}`;
  const size = from && from[1] === spec.height && from[2] === spec.width ? `none (${target})` : `bilinear to ${target} (half-pixel centres)`;
  if (!from || from[3] === undefined || from[3] === spec.channels) return size;
  return `${size}, ${spec.channels === 1 ? 'RGB to luma' : 'gray copied to RGB'}`;
}
