import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions, definePlugin, type GantryPlugin, type LossContext } from '@gantry/core';

export interface FeatureMatchingOptions {
  /** Discriminator layer whose output is matched: its name or index in `discriminator.layers`. Default: the
   * layer before the last one (the features the final layer reads). */
  layer?: string | number;
  /** Weight of the term. Default 1. */
  weight?: number;
  /**
   * `'add'` (default) adds the term to the generator's adversarial loss; `'replace'` makes it the generator's
   * only objective, as in Salimans et al. 2016 (through the generatorLoss hook: it replaces the adversarial loss).
   */
  mode?: 'add' | 'replace';
}

/** The output of `layer` as it is wired inside `model` (shared layers have one output per model they sit in). */
function outputWithin(model: LayersModel, layer: tfl.layers.Layer): SymbolicTensor {
  const nodes = layer.inboundNodes.length;
  const containerNodes = (model as unknown as { containerNodes: Set<string> }).containerNodes;
  for (let i = 0; i < nodes; i++) {
    if (nodes === 1 || containerNodes.has(`${layer.name}_ib-${i}`)) {
      const out = layer.getOutputAt(i);
      if (Array.isArray(out)) throw new GantryError(`featureMatching: layer "${layer.name}" has several outputs`);
      return out;
    }
  }
  throw new GantryError(`featureMatching: layer "${layer.name}" is not wired into the discriminator`);
}

/** A model from the discriminator's input to the output of one of its layers, sharing the discriminator's weights. */
export function featureModel(discriminator: LayersModel, layer?: string | number): LayersModel {
  if (discriminator.inputs.length !== 1) {
    throw new GantryError('featureMatching supports discriminators with one input (not conditional ones)');
  }
  const layers = discriminator.layers;
  let chosen: tfl.layers.Layer | undefined;
  if (layer === undefined) chosen = layers.length >= 2 ? layers[layers.length - 2] : undefined;
  else if (typeof layer === 'number') chosen = layers.at(layer);
  else chosen = layers.find((l) => l.name === layer);
  if (!chosen || chosen.getClassName() === 'InputLayer') {
    throw new GantryError(
      `featureMatching: no feature layer ${layer === undefined ? '(the discriminator has a single layer)' : `"${layer}"`}; layers are ${layers.map((l) => l.name).join(', ')}`,
    );
  }
  return tfl.model({ inputs: discriminator.inputs, outputs: outputWithin(discriminator, chosen) });
}

/** ‖mean_batch f(real) − mean_batch f(fake)‖², features flattened per sample. */
export function featureMatchingLoss(realFeatures: tf.Tensor, fakeFeatures: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const mean = (f: tf.Tensor) => tf.mean(tf.reshape(f, [f.shape[0], -1]), 0);
    return tf.sum(tf.square(tf.sub(mean(realFeatures), mean(fakeFeatures)))) as tf.Scalar;
  });
}

/**
 * Feature matching (Salimans et al. 2016): the generator matches the mean of an intermediate discriminator
 * layer's activations on real data, ‖E f(x) − E f(G(z))‖², instead of (or besides) fooling the final output.
 * The features come from a sub-model that shares the discriminator's layers (rebuilt if the discriminator is
 * replaced). Term reported as `G/feature-matching`.
 */
export function featureMatching(options: FeatureMatchingOptions = {}): GantryPlugin {
  checkOptions('featureMatching', options, ['layer', 'weight', 'mode']);
  const weight = options.weight ?? 1;
  const mode = options.mode ?? 'add';
  if (mode !== 'add' && mode !== 'replace') throw new GantryError(`featureMatching mode must be "add" or "replace", got "${mode}"`);
  if (!Number.isFinite(weight) || weight < 0) throw new GantryError(`featureMatching weight must be >= 0, got ${weight}`);
  let builtFor: LayersModel | undefined;
  let features: LayersModel | undefined;
  const featuresOf = (discriminator: LayersModel) => {
    if (builtFor !== discriminator || !features) {
      features = featureModel(discriminator, options.layer);
      builtFor = discriminator;
    }
    return features;
  };
  /** weight · ‖E f(x) − E f(G(z))‖²; only the generator's weights are differentiated, so real features are constants. */
  const term = (ctx: LossContext): tf.Scalar => {
    const f = featuresOf(ctx.discriminator);
    const realFeatures = f.apply(ctx.real, { training: true }) as tf.Tensor;
    const fakeFeatures = f.apply(ctx.fake, { training: true }) as tf.Tensor;
    return tf.mul(featureMatchingLoss(realFeatures, fakeFeatures), weight) as tf.Scalar;
  };
  return definePlugin({
    name: 'feature-matching',
    hooks: {
      setup(trainer) {
        featuresOf(trainer.discriminator);
      },
      // 'add': one more loss term; 'replace': the generator's loss itself (the core reports it as G/feature-matching).
      ...(mode === 'add'
        ? { lossTerms: { phase: 'G' as const, handler: (ctx: LossContext) => term(ctx) } }
        : { generatorLoss: (_loss: tf.Scalar, ctx: LossContext) => term(ctx) }),
    },
  });
}
