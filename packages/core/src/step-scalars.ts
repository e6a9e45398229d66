import * as tf from '@tensorflow/tfjs-core';

/** Scalars of one step, accumulated as tensors and read from the device once, together. */
export class StepScalars {
  private readonly sums = new Map<string, { total: tf.Scalar; count: number }>();

  add(name: string, value: tf.Scalar): void {
    // A clone shares the data but has its own lifetime, so the caller may dispose `value`.
    const kept = tf.keep(tf.clone(value));
    const entry = this.sums.get(name);
    if (!entry) {
      this.sums.set(name, { total: kept, count: 1 });
      return;
    }
    const total = tf.keep(tf.add(entry.total, kept) as tf.Scalar);
    entry.total.dispose();
    kept.dispose();
    entry.total = total;
    entry.count += 1;
  }

  /**
   * One device read for all scalars (means over critic iterations) and the values of `extra` (e.g. weight probes),
   * then every tensor, `extra` included, is disposed.
   */
  async read(extra?: tf.Tensor1D): Promise<{ scalars: Record<string, number>; extra: Float32Array }> {
    const names = [...this.sums.keys()];
    const stacked = tf.tidy(() => {
      const means = names.map((n) => tf.reshape(tf.div(this.sums.get(n)!.total, this.sums.get(n)!.count), [1]));
      return tf.concat([...means, ...(extra ? [extra] : [])]);
    });
    const values = names.length > 0 || extra ? ((await stacked.data()) as Float32Array) : new Float32Array(0);
    tf.dispose([stacked, ...(extra ? [extra] : [])]);
    this.dispose();
    return { scalars: Object.fromEntries(names.map((n, i) => [n, values[i]])), extra: values.subarray(names.length) };
  }

  dispose(): void {
    for (const { total } of this.sums.values()) total.dispose();
    this.sums.clear();
  }
}
