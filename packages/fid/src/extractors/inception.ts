import { basename, dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkOptions } from '@gantry/core';
import { FidError } from '../errors.js';
import { isGraphModel, isUrl, readModelFile } from './model-files.js';
import { describeResize, prepareImages, type InputSpec } from './preprocess.js';
import type { FeatureExtractor } from './types.js';

export interface InceptionOptions {
  /** A tfjs model.json (layers or graph format): a local path, or an http(s) URL. */
  model: string;
  /**
   * Where the features are read: a node name for graph models (e.g. the 2048-d pool3 average pool), a layer name
   * for layers models. Default: the model's output.
   */
  outputNode?: string;
  /** Side of the square network input. Default: from the model's input shape, else 299. */
  inputSize?: number;
  /** Value range the network expects; images in [-1, 1] are mapped onto it. Default [-1, 1] (Keras InceptionV3). */
  inputRange?: [number, number];
  /** Shape [H, W, C] of the images that will be passed, so the recorded resize says exactly what happens. */
  imageShape?: readonly number[];
  /** Name reported with every metric. Default "inception-v3-pool3:<model>". */
  name?: string;
}

interface Runner {
  run(x: tf.Tensor4D): tf.Tensor;
  inputShape?: readonly (number | null)[];
  dispose(): void;
}

async function loadGraph(source: string | tf.io.IOHandler, outputNode?: string): Promise<Runner> {
  const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
  const model = await loadGraphModel(source);
  return {
    run: (x) => (outputNode ? model.execute(x, outputNode) : model.execute(x)) as tf.Tensor,
    inputShape: model.inputs[0]?.shape,
    dispose: () => model.dispose(),
  };
}

async function loadLayers(source: string | tf.io.IOHandler, outputNode?: string): Promise<Runner> {
  const full = await tfl.loadLayersModel(source);
  let model = full;
  if (outputNode) {
    let layer: tfl.layers.Layer;
    try {
      layer = full.getLayer(outputNode);
    } catch {
      throw new FidError(`the layers model has no layer "${outputNode}" (layers: ${full.layers.map((l) => l.name).join(', ')})`);
    }
    model = tfl.model({ inputs: full.inputs, outputs: layer.output as tfl.SymbolicTensor });
  }
  return {
    run: (x) => model.predict(x) as tf.Tensor,
    inputShape: full.inputs[0].shape,
    dispose: () => full.dispose(),
  };
}

/**
 * Inception-v3 pool3 features (2048-d for the standard network) from a tfjs model file the user supplies: no weights
 * are downloaded behind the user's back. Images in [-1, 1] are turned to 3 channels (gray copied), resized
 * bilinearly (half-pixel centres) to the input size (299), and mapped to `inputRange`. Works with any image network
 * whose chosen output is a feature map or vector; the name records which file it was.
 */
export async function inceptionExtractor(options: InceptionOptions): Promise<FeatureExtractor> {
  checkOptions('inceptionExtractor', options, ['model', 'outputNode', 'inputSize', 'inputRange', 'imageShape', 'name']);
  if (!options.model) throw new FidError('inceptionExtractor needs a model: a model.json path or URL');
  let runner: Runner;
  if (isUrl(options.model)) {
    let json: { format?: string; modelTopology?: unknown };
    try {
      const response = await fetch(options.model);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      json = (await response.json()) as typeof json;
    } catch (error) {
      throw new FidError(`cannot fetch model ${options.model}: ${(error as Error).message}`);
    }
    runner = isGraphModel(json) ? await loadGraph(options.model, options.outputNode) : await loadLayers(options.model, options.outputNode);
  } else {
    const artifacts = await readModelFile(options.model);
    const handler = tf.io.fromMemory(artifacts);
    runner = isGraphModel(artifacts) ? await loadGraph(handler, options.outputNode) : await loadLayers(handler, options.outputNode);
  }
  const side = options.inputSize ?? runner.inputShape?.[1] ?? 299;
  if (typeof side !== 'number' || side < 1) throw new FidError(`invalid input size ${side}`);
  const spec: InputSpec = { height: side, width: side, channels: 3 };
  const [lo, hi] = options.inputRange ?? [-1, 1];
  const features = (images: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      let x = prepareImages(images, spec);
      if (lo !== -1 || hi !== 1) x = tf.add(tf.mul(tf.add(x, 1), (hi - lo) / 2), lo);
      const out = runner.run(x);
      return tf.reshape(out, [images.shape[0], -1]) as tf.Tensor2D;
    });
  // One probe image gives the feature width (and fails early on a model that does not take images).
  let dims: number;
  try {
    const probe = tf.zeros([1, side, side, 3]) as tf.Tensor4D;
    const out = features(probe);
    dims = out.shape[1];
    tf.dispose([probe, out]);
  } catch (error) {
    runner.dispose();
    throw new FidError(`model ${options.model} cannot run on [1, ${side}, ${side}, 3] images: ${(error as Error).message}`);
  }
  const label = isUrl(options.model) ? options.model : `${basename(dirname(options.model))}/${basename(options.model)}`;
  return {
    name: options.name ?? `inception-v3-pool3:${label}${options.outputNode ? `#${options.outputNode}` : ''}`,
    dims,
    resize: describeResize(spec, options.imageShape ? [0, ...options.imageShape] : undefined) + `, range [${lo}, ${hi}]`,
    resizeFor: (shape) => describeResize(spec, [0, ...shape]) + `, range [${lo}, ${hi}]`,
    extract: features,
    dispose: () => runner.dispose(),
  };
}
