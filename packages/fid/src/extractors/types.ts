import type * as tf from '@tensorflow/tfjs-core';

/**
 * Maps images to feature vectors. Every reported metric names the extractor and its resize, because numbers from
 * different extractors (or different resizing) are not comparable.
 */
export interface FeatureExtractor {
  /** Identifies the network and its weights, e.g. "mnist-classifier-v1" or "inception-v3-pool3:<file>". */
  readonly name: string;
  /** Length of one feature vector. */
  readonly dims: number;
  /**
   * How images are brought to the network's input size, e.g. "none (28×28)" or "bilinear to 299×299 (half-pixel
   * centres)", for the image shape the extractor was set up for.
   */
  readonly resize: string;
  /** What happens to images of shape [H, W, C] on their way in (the pipeline records this per set). */
  resizeFor?(imageShape: readonly number[]): string;
  /** Features [B, dims] of images [B, H, W, C] in [-1, 1] (C = 1 or 3). The caller owns the result. */
  extract(images: tf.Tensor4D): tf.Tensor2D;
  /** Class probabilities [B, classes] (for the Inception Score), when the network is a classifier. */
  classify?(images: tf.Tensor4D): tf.Tensor2D;
  /** Frees the network's weights. */
  dispose(): void;
}
