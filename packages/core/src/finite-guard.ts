import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { GantryError } from './errors.js';

const stoppedBefore = (lastCheckpoint?: string) =>
  'Training stopped before checkpointing it' +
  (lastCheckpoint ? `; last good checkpoint: ${lastCheckpoint}` : '; no checkpoint was written yet');

/** A model's weights hold NaN or ±Infinity after an update (e.g. a NaN gradient that finite losses hid). */
export class NonFiniteWeightsError extends GantryError {
  override name = 'NonFiniteWeightsError';
  constructor(
    readonly step: number,
    readonly model: string,
    readonly variable: string,
    readonly lastCheckpoint?: string,
  ) {
    super(`Non-finite weights after step ${step}: ${model} variable "${variable}" holds NaN or Infinity. ${stoppedBefore(lastCheckpoint)}`);
  }
}

/** A model's weight norm passed the `maxWeightNorm` limit: the run is diverging. */
export class WeightsDivergedError extends GantryError {
  override name = 'WeightsDivergedError';
  constructor(
    readonly step: number,
    readonly model: string,
    readonly norm: number,
    readonly limit: number,
    readonly lastCheckpoint?: string,
  ) {
    super(
      `Weights diverged at step ${step}: the ${model}'s weight norm is ${norm.toExponential(3)}, above maxWeightNorm ` +
        `${limit}. ${stoppedBefore(lastCheckpoint)}`,
    );
  }
}

/**
 * Health probes of the models' weights, computed on the device and read in the same device read as the step's
 * scalars (no extra sync): per variable its sum, multiplied by 0 once for all of them, which is NaN exactly when the
 * sum is not finite: when the variable holds a NaN or ±Infinity, or (finite values) when its sum overflows float32,
 * which `check` tells apart by reading that variable. One reduction per variable and no weight-sized temporary (a
 * per-variable sum(w · 0) was two kernels and a copy of every weight per step). With a limit, also each model's L2 norm.
 */
export function weightProbes(models: Record<string, LayersModel>, maxWeightNorm?: number) {
  const entries = Object.entries(models).map(([role, model]) => ({ role, weights: model.weights }));
  const tensor = tf.tidy(() => {
    const sums = entries.flatMap(({ weights }) => weights.map((w) => tf.sum(w.read()) as tf.Scalar));
    const finite = tf.mul(tf.stack(sums), 0) as tf.Tensor1D;
    if (maxWeightNorm === undefined) return finite;
    const norms = entries.map(({ weights }) => tf.sqrt(tf.addN(weights.map((w) => tf.sum(tf.square(w.read()))))) as tf.Scalar);
    return tf.concat([finite, tf.stack(norms) as tf.Tensor1D]);
  });
  /** Throws when the values read back show a non-finite weight or, with a limit, a norm above it. */
  const check = async (values: ArrayLike<number>, step: number, lastCheckpoint?: string): Promise<void> => {
    let i = 0;
    for (const { role, weights } of entries) {
      for (const w of weights) {
        if (Number.isNaN(values[i++]) && (await holdsNonFinite(w.read()))) throw new NonFiniteWeightsError(step, role, w.name, lastCheckpoint);
      }
    }
    if (maxWeightNorm === undefined) return;
    for (const { role } of entries) {
      const norm = values[i++];
      if (!(norm <= maxWeightNorm)) throw new WeightsDivergedError(step, role, norm, maxWeightNorm, lastCheckpoint);
    }
  };
  return { tensor, check };
}

/** Whether a tensor holds NaN or ±Infinity (read from the device: only when its probe was not finite). */
async function holdsNonFinite(t: tf.Tensor): Promise<boolean> {
  const values = await t.data();
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return true;
  return false;
}
