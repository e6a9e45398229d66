import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { GantryPlugin, LossContext } from '@gantry/core';
import { hookHandler } from '@gantry/core/testing';

export { lossContext } from '@gantry/core/testing';

export const lossTermsHandler = (plugin: GantryPlugin) => hookHandler<(ctx: LossContext) => tf.Scalar>(plugin, 'lossTerms');

/** A linear critic D(x) = w·flatten(x) + b with the given w. */
export function linearCritic(inputShape: number[], w: number[], b = 0.3): tfl.LayersModel {
  const layers: tfl.layers.Layer[] = [];
  if (inputShape.length > 1) layers.push(tfl.layers.flatten({ inputShape }));
  layers.push(tfl.layers.dense({ units: 1, ...(inputShape.length > 1 ? {} : { inputShape }) }));
  const model = tfl.sequential({ layers });
  model.layers.at(-1)!.setWeights([tf.tensor2d(w, [w.length, 1]), tf.tensor1d([b])]);
  return model;
}

export const norm = (v: number[]) => Math.hypot(...v);
