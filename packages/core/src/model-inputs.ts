import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { isDataSource, type DataInput } from './data.js';
import { GantryError } from './errors.js';
import { randomNormal, type NormalGenerator } from './normal.js';
import type { Rng } from './random.js';

/** The declared shape of a model's input or output (`null` for free dimensions such as the batch). */
export function shapeOf(model: LayersModel, which: 'input' | 'output', index = 0): (number | null)[] {
  const list = which === 'input' ? model.inputs : model.outputs;
  return list[index].shape;
}

const fmtShape = (s: readonly (number | null)[]) => `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]`;

/**
 * A model's inputs: the tensor alone, or [tensor, labels] shaped for a conditional model's label input (class indices
 * become one-hot rows when the label input is wider than 1).
 */
export function modelInputs(model: LayersModel, x: tf.Tensor, labels?: tf.Tensor): tf.Tensor | tf.Tensor[] {
  if (model.inputs.length < 2) return x;
  if (!labels) throw new GantryError(`Model "${model.name}" is conditional (2 inputs) but the batch has no labels`);
  const labelShape = model.inputs[1].shape;
  const width = labelShape.at(-1);
  if (labelShape.length === 2 && width !== null && width !== undefined && width > 1 && labels.rank === 1) {
    return [x, tf.cast(tf.oneHot(tf.cast(labels, 'int32'), width), 'float32')];
  }
  return [x, tf.reshape(tf.cast(labels, 'float32'), [labels.shape[0], ...(labelShape.slice(1) as number[])])];
}

/** Real samples, generated samples and the discriminator's input must agree per sample; one line says which differ. */
export function checkSampleShapes(real: tf.Tensor, fake: tf.Tensor, discriminator: LayersModel): void {
  const realShape = real.shape.slice(1);
  const fakeShape = fake.shape.slice(1);
  if (realShape.join() !== fakeShape.join()) {
    throw new GantryError(
      `Shape mismatch: the generator outputs ${fmtShape(fakeShape)} per sample but the real data is ${fmtShape(realShape)}`,
    );
  }
  const dIn = shapeOf(discriminator, 'input').slice(1);
  if (dIn.some((d, i) => d !== null && d !== realShape[i]) || dIn.length !== realShape.length) {
    throw new GantryError(
      `Shape mismatch: the discriminator takes ${fmtShape(dIn)} per sample but the real data is ${fmtShape(realShape)}`,
    );
  }
}

/** Classes of a conditional run: the DataSource's `numClasses`, else the width (> 1) of the generator's label input. */
export function classCount(generator: LayersModel, data: DataInput): number | undefined {
  if (isDataSource(data) && data.numClasses) return data.numClasses;
  if (generator.inputs.length < 2) return undefined;
  const labelDim = shapeOf(generator, 'input', 1).at(-1);
  return labelDim && labelDim > 1 ? labelDim : undefined;
}

/**
 * n latent vectors: standard normal or uniform on [-1, 1], seeded by one draw of `rng`. Normal latents are
 * `tf.randomNormal`'s numbers for that seed, drawn by the faster `randomNormal`, or with `normals` 'fast' the
 * ziggurat's (`fastNormalValues`).
 */
export function drawLatents(
  n: number,
  dim: number,
  distribution: 'normal' | 'uniform',
  rng: Rng,
  normals: NormalGenerator = 'tfjs',
): tf.Tensor2D {
  return distribution === 'normal'
    ? (randomNormal([n, dim], rng.nextSeed(), 0, 1, normals) as tf.Tensor2D)
    : tf.randomUniform([n, dim], -1, 1, 'float32', rng.nextSeed());
}
