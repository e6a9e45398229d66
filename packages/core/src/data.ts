import type * as tf from '@tensorflow/tfjs-core';

/** One batch of real data. `x` is in [-1, 1]; `labels` (int32 class indices, shape [B]) only for conditional GANs. */
export interface Batch {
  x: tf.Tensor;
  labels?: tf.Tensor;
}

export interface BatchOptions {
  batchSize: number;
  /** Seed for shuffling; the stream is a pure function of (seed, start). */
  seed: number;
  /** Index of the first batch to produce: a resumed run continues the stream where it stopped. */
  start: number;
}

/**
 * A resumable source of real data. `batches()` yields an endless stream; the trainer takes ownership of every
 * tensor it yields and disposes them.
 */
export interface DataSource {
  readonly name: string;
  /** Shape of one example, e.g. [28, 28, 1] or [2]. */
  readonly elementShape: readonly number[];
  /** Number of classes when examples carry labels. */
  readonly numClasses?: number;
  /**
   * Range every value must lie in; the trainer checks real batches against it. Default [-1, 1] (images scaled for
   * a tanh generator). `null` for unbounded data such as Gaussian mixtures.
   */
  readonly valueRange?: readonly [number, number] | null;
  batches(options: BatchOptions): Iterator<Batch> | AsyncIterator<Batch>;
}

/** Anything the trainer accepts as data: a DataSource (exact resume) or a plain (async) iterable of batches. */
export type DataInput = DataSource | Iterable<Batch | tf.Tensor> | AsyncIterable<Batch | tf.Tensor>;

export function isDataSource(data: DataInput): data is DataSource {
  return typeof (data as DataSource).batches === 'function' && Array.isArray((data as DataSource).elementShape);
}
