import * as tf from '@tensorflow/tfjs-core';
import { isDataSource, type Batch, type DataInput } from './data.js';
import { GantryError } from './errors.js';

/** Disposes a batch's tensors, except those that `keep` (its replacement) still holds. */
export function disposeBatch(batch: Batch | undefined, keep?: Batch): void {
  if (!batch) return;
  if (batch.x !== keep?.x && batch.x !== keep?.labels) batch.x.dispose();
  if (batch.labels && batch.labels !== keep?.labels && batch.labels !== keep?.x) batch.labels.dispose();
}

export interface RealDataOptions {
  batchSize: number;
  /** Seed handed to a DataSource (its shuffling). */
  seed: number;
  /** Check values of only the first batch (default) or of every batch. */
  validate?: 'first' | 'every';
  /** Whether the generator takes labels, and how many classes they have (both may change with the models). */
  conditional: () => boolean;
  numClasses: () => number | undefined;
}

/**
 * The real batches of a run: pulled from a DataSource (which resumes exactly at `batchesConsumed`) or from any (async)
 * iterable, which is read again from the start when it ends, like epochs. Values, labels and classes are checked with
 * one clear error line.
 */
export class RealData {
  /** Batches handed out so far, over the whole run (restored from checkpoints). */
  batchesConsumed = 0;
  /** Shape of one example, known after the first batch. */
  exampleShape?: number[];
  private iterator?: Iterator<Batch | tf.Tensor> | AsyncIterator<Batch | tf.Tensor>;
  private restarts = 0;
  private batchesAtRestart = -1;
  private checked = false;

  constructor(
    private readonly data: DataInput,
    private readonly options: RealDataOptions,
  ) {}

  /** Continue from batch `batchesConsumed` (after a restore): a DataSource restarts there. */
  resumeAt(batchesConsumed: number): void {
    this.batchesConsumed = batchesConsumed;
    this.iterator = undefined;
  }

  /** A fresh real batch, value-checked; the caller owns it. */
  async next(): Promise<Batch> {
    const batch = await this.pull();
    if (!this.checked || this.options.validate === 'every') {
      await this.checkValues(batch);
      this.checked = true;
    }
    return batch;
  }

  private async pull(): Promise<Batch> {
    if (!this.iterator) {
      const data = this.data;
      if (isDataSource(data)) {
        this.iterator = data.batches({ batchSize: this.options.batchSize, seed: this.options.seed, start: this.batchesConsumed });
      } else {
        const iterable = data as AsyncIterable<Batch | tf.Tensor> & Iterable<Batch | tf.Tensor>;
        this.iterator =
          typeof iterable[Symbol.asyncIterator] === 'function' ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      }
    }
    const result = await this.iterator.next();
    if (result.done) {
      this.iterator = undefined;
      if (isDataSource(this.data)) throw new GantryError('The DataSource stream ended; batches() must be endless');
      if (this.restarts++ > 0 && this.batchesConsumed === this.batchesAtRestart) {
        throw new GantryError('The data iterable yielded no batches');
      }
      this.batchesAtRestart = this.batchesConsumed;
      return this.pull();
    }
    const value = result.value;
    const batch: Batch = value instanceof tf.Tensor ? { x: value } : value;
    if (!batch || !(batch.x instanceof tf.Tensor)) {
      throw new GantryError('Each data batch must be a tensor or an object { x: tensor, labels?: tensor }');
    }
    this.batchesConsumed += 1;
    this.exampleShape ??= batch.x.shape.slice(1);
    return batch;
  }

  private async checkValues(batch: Batch): Promise<void> {
    const [min, max] = tf.tidy(() => [tf.min(batch.x), tf.max(batch.x)]);
    const lo = (await min.data())[0];
    const hi = (await max.data())[0];
    min.dispose();
    max.dispose();
    const fail = (message: string): never => {
      disposeBatch(batch);
      throw new GantryError(message);
    };
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) fail(`Real data contains NaN or Infinity (batch ${this.batchesConsumed})`);
    const data = this.data;
    const range = isDataSource(data) && data.valueRange !== undefined ? data.valueRange : ([-1, 1] as const);
    if (range && (lo < range[0] - 1e-6 || hi > range[1] + 1e-6)) {
      fail(
        `Real data must lie in [${range[0]}, ${range[1]}] but batch ${this.batchesConsumed} spans [${lo}, ${hi}]` +
          (hi > 1.5 && range[1] === 1 ? ' (for 8-bit images use x / 127.5 - 1)' : ''),
      );
    }
    if (this.options.conditional() && !batch.labels) fail('The generator is conditional (2 inputs) but the data has no labels');
    const numClasses = this.options.numClasses();
    if (batch.labels && numClasses) {
      const top = tf.max(batch.labels);
      const maxLabel = (await top.data())[0];
      top.dispose();
      if (maxLabel >= numClasses) fail(`Label ${maxLabel} is out of range for ${numClasses} classes`);
    }
  }
}
