import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** Applies a layer or model to a concrete tensor (the typings also allow symbolic ones). */
export function run(layer: { apply(x: any, kwargs?: any): unknown }, x: tf.Tensor, training?: boolean): tf.Tensor {
  return layer.apply(x, training === undefined ? undefined : { training }) as tf.Tensor;
}

type Nested = number | Nested[];

export function maxAbsDiff(a: Nested, b: Nested): number {
  if (typeof a === 'number') return Math.abs(a - (b as number));
  return Math.max(...a.map((v, i) => maxAbsDiff(v, (b as Nested[])[i])));
}

/** Central differences (h = 1e-6, float64) of f at every entry of a nested array. */
export function centralDifferences<T extends Nested>(x: T, f: (x: T) => number, h = 1e-6): T {
  const flat: number[] = [];
  const collect = (v: Nested) => (typeof v === 'number' ? flat.push(v) : v.forEach(collect));
  collect(x);
  const rebuild = (values: number[]): T => {
    let k = 0;
    const walk = (v: Nested): Nested => (typeof v === 'number' ? values[k++] : v.map(walk));
    return walk(x) as T;
  };
  const grads = flat.map((_, i) => {
    const plus = flat.slice();
    const minus = flat.slice();
    plus[i] += h;
    minus[i] -= h;
    return (f(rebuild(plus)) - f(rebuild(minus))) / (2 * h);
  });
  return rebuild(grads);
}

/** Saves through tf.io.withSaveHandler and reloads with tf.io.fromMemory, the topology going through JSON. */
export async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const topology = JSON.parse(JSON.stringify(saved!.modelTopology));
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: topology, weightSpecs: saved!.weightSpecs, weightData: saved!.weightData }));
}
