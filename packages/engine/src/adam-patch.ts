import * as tf from '@tensorflow/tfjs-core';

/** The fields of tfjs's AdamOptimizer that a replacement update reads and writes (its state, unchanged in layout). */
export interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}

/**
 * One backend's replacement of tf.train.adam's update. Gradients are by position in `names` (undefined: no
 * gradient, the weight is skipped as tfjs skips it). Returns false to leave this call to tfjs's own code.
 */
export type AdamUpdate = (
  optimizer: tf.AdamOptimizer,
  names: string[],
  gradients: (tf.Tensor | undefined)[],
) => boolean;

const PATCH_KEY = Symbol.for('gantry.adam.updates');
const STOCK_KEY = Symbol.for('gantry.adam.stock');
type ApplyGradients = (this: tf.AdamOptimizer, g: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]) => void;

/**
 * The backend-specific Adam updates, kept on the prototype itself: one patch however many copies of this module load
 * (ESM and CJS builds, vitest's per-file module graphs).
 */
function updates(): Map<string, AdamUpdate> {
  const proto = tf.AdamOptimizer.prototype as unknown as Record<symbol, Map<string, AdamUpdate> | undefined>;
  const existing = proto[PATCH_KEY];
  if (existing) return existing;
  const table = new Map<string, AdamUpdate>();
  proto[PATCH_KEY] = table;
  const p = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients; [STOCK_KEY]?: ApplyGradients };
  const stock = p.applyGradients;
  p[STOCK_KEY] = stock;
  p.applyGradients = function applyGradients(
    this: tf.AdamOptimizer,
    variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[],
  ): void {
    const update = table.get(tf.getBackend());
    if (update != null) {
      const names = Array.isArray(variableGradients)
        ? variableGradients.map((v) => v.name)
        : Object.keys(variableGradients);
      const variables = tf.engine().registeredVariables;
      if (names.every((name) => variables[name]?.dtype === 'float32')) {
        const gradients = Array.isArray(variableGradients)
          ? variableGradients.map((v) => v.tensor as tf.Tensor | undefined)
          : names.map((name) => variableGradients[name] as tf.Tensor | undefined);
        if (update(this, names, gradients)) return;
      }
    }
    stock.call(this, variableGradients);
  };
  return table;
}

/** tfjs's own AdamOptimizer.applyGradients, whatever is patched: the reference the replacements are tested against. */
export function stockAdamApply(optimizer: tf.AdamOptimizer, gradients: { name: string; tensor: tf.Tensor }[]): void {
  updates();
  const stock = (tf.AdamOptimizer.prototype as unknown as Record<symbol, ApplyGradients>)[STOCK_KEY];
  stock.call(optimizer, gradients);
}

/** Makes tf.train.adam's update on `backend` run `update` (idempotent: the last registration per backend wins). */
export function patchAdam(backend: string, update: AdamUpdate): void {
  updates().set(backend, update);
}

/** True when tf.train.adam's update on `backend` is replaced. */
export function adamPatched(backend: string): boolean {
  return updates().has(backend);
}

/**
 * The first and second moment variables of weight `i` (`name`), created as tfjs creates them (zeros, non-trainable,
 * named `<weight>/m` and `<weight>/v`), so getWeights/setWeights and checkpoints keep their format.
 */
function adamMoments(self: AdamInternals, name: string, i: number, value: tf.Variable): [tf.Variable, tf.Variable] {
  self.accumulatedFirstMoment[i] ??= {
    originalName: `${name}/m`,
    variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
  };
  self.accumulatedSecondMoment[i] ??= {
    originalName: `${name}/v`,
    variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
  };
  return [self.accumulatedFirstMoment[i].variable, self.accumulatedSecondMoment[i].variable];
}

/**
 * The frame every replacement shares, as tfjs's own update has it: inside one tidy, for each weight its moment
 * variables and, where it has a gradient, `update(weight, m, v, gradient)` (which assigns the three); then β₁ᵗ and
 * β₂ᵗ advance (kept so that tfjs's own code, on another backend or in setWeights, sees the same state) and the step
 * count.
 */
export function adamStep(
  optimizer: tf.AdamOptimizer,
  names: string[],
  gradients: (tf.Tensor | undefined)[],
  update: (value: tf.Variable, m: tf.Variable, v: tf.Variable, gradient: tf.Tensor, name: string) => void,
): void {
  const self = optimizer as unknown as AdamInternals;
  const variables = tf.engine().registeredVariables;
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = variables[name];
      const [m, v] = adamMoments(self, name, i, value);
      const gradient = gradients[i];
      if (gradient != null) update(value, m, v, gradient, name);
    });
    self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
    self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
  });
  self.incrementIterations();
}
