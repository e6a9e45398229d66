import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GantryError, checkOptions } from '@gantry/core';
import { ELIGIBLE_CLASSES } from './power-iteration.js';
import { SpectralNormalization } from './layer.js';

type ConfigDict = tf.serialization.ConfigDict;
type LayerConfigEntry = { className: string; config: ConfigDict; name?: string; inboundNodes?: unknown };

export interface SpectralNormalizeOptions {
  /** Power-iteration rounds per training forward pass. Default 1. */
  powerIterations?: number;
  /** Which eligible layers to wrap (default: all Dense, Conv2D and Conv2DTranspose layers). */
  include?: (layer: { name: string; className: string }) => boolean;
}

const MODEL_CLASSES = ['Sequential', 'Model', 'Functional'];
// Settings that belong to the outer (graph) layer: the Sequential input shape and the layer's dtype.
const OUTER_KEYS = ['batchInputShape', 'inputShape', 'batchSize', 'dtype', 'inputDType'];

function wrapEntry(entry: LayerConfigEntry, options: Required<SpectralNormalizeOptions>): LayerConfigEntry {
  const { className, config } = entry;
  if (MODEL_CLASSES.includes(className)) {
    const layers = (config.layers as unknown as LayerConfigEntry[]).map((e) => wrapEntry(e, options));
    return { ...entry, config: { ...config, layers: layers as unknown as ConfigDict[] } };
  }
  if (!(ELIGIBLE_CLASSES as readonly string[]).includes(className)) return entry;
  if (!options.include({ name: config.name as string, className })) return entry;
  const inner: ConfigDict = { ...config };
  const outer: ConfigDict = { name: config.name, trainable: config.trainable ?? true };
  for (const key of OUTER_KEYS) {
    if (key in inner) {
      outer[key] = inner[key];
      delete inner[key];
    }
  }
  return {
    ...entry,
    className: SpectralNormalization.className,
    config: { ...outer, layer: { className, config: inner }, powerIterations: options.powerIterations },
  };
}

function copyWeights(from: tfl.layers.Layer, to: tfl.layers.Layer): void {
  if (to instanceof SpectralNormalization) {
    to.layer.setWeights(from.getWeights());
  } else if (to instanceof tfl.LayersModel && from instanceof tfl.LayersModel) {
    for (const layer of from.layers) copyWeights(layer, to.getLayer(layer.name));
  } else {
    to.setWeights(from.getWeights());
  }
}

/**
 * Rebuilds a Sequential or functional model (nested models included) with every Dense, Conv2D and Conv2DTranspose
 * layer wrapped in SpectralNormalization, keeping layer names and copying the current weights. The original model
 * is left untouched (dispose it when it is no longer needed). Each wrapper starts from a random u; its first
 * training forward passes refine it.
 */
export function spectralNormalize(model: tfl.LayersModel, options: SpectralNormalizeOptions = {}): tfl.LayersModel {
  checkOptions('spectralNormalize', options, ['powerIterations', 'include']);
  const resolved: Required<SpectralNormalizeOptions> = {
    powerIterations: options.powerIterations ?? 1,
    include: options.include ?? (() => true),
  };
  const className = model.getClassName();
  if (!MODEL_CLASSES.includes(className)) {
    throw new GantryError(`spectralNormalize expects a Sequential or functional model, got ${className}`);
  }
  const wrapped = wrapEntry({ className, config: model.getConfig() }, resolved);
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  const rebuilt = entry[1](entry[0], wrapped.config) as unknown as tfl.LayersModel;
  copyWeights(model, rebuilt);
  return rebuilt;
}

/** Every SpectralNormalization layer of a model, nested models included. */
export function spectralNormLayers(model: tfl.LayersModel): SpectralNormalization[] {
  const found: SpectralNormalization[] = [];
  for (const layer of model.layers) {
    if (layer instanceof SpectralNormalization) found.push(layer);
    else if (layer instanceof tfl.LayersModel) found.push(...spectralNormLayers(layer));
  }
  return found;
}
