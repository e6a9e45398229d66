import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, unpackScheduled, type GantryPlugin, type LossContext } from '@gantry/core';

/** A LossContext for calling a plugin's lossTerms directly, as the Trainer would in a D phase. */
export function lossContext(options: {
  discriminator: tfl.LayersModel;
  real: tf.Tensor;
  fake: tf.Tensor;
  labels?: tf.Tensor;
  numClasses?: number;
  seed?: number;
  step?: number;
}): { ctx: LossContext; reports: Record<string, number> } {
  const reports: Record<string, number> = {};
  const { discriminator, real, fake, labels, numClasses } = options;
  const discriminate = (x: tf.Tensor, l?: tf.Tensor) =>
    discriminator.apply(l ? [x, tf.cast(tf.oneHot(tf.cast(l, 'int32'), numClasses!), 'float32')] : x, { training: true }) as tf.Tensor;
  const ctx = {
    trainer: undefined as never,
    step: options.step ?? 1,
    phase: 'D',
    criticIndex: 0,
    rng: new Rng(options.seed ?? 0),
    report: (name: string, value: tf.Scalar) => {
      reports[name] = value.dataSync()[0];
    },
    real,
    fake,
    labels,
    fakeLogits: tf.zeros([1]),
    discriminate,
    generator: undefined as never,
    discriminator,
  } as LossContext;
  return { ctx, reports };
}

export function lossTermsHandler(plugin: GantryPlugin): (ctx: LossContext) => tf.Scalar {
  return unpackScheduled(plugin.hooks!.lossTerms!).handler as (ctx: LossContext) => tf.Scalar;
}

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
