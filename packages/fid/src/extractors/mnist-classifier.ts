import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FidError } from '../errors.js';
import { bundledWeightsDir } from '../weights-path.js';
import { readModelFile } from './model-files.js';
import { describeResize, prepareImages, type InputSpec } from './preprocess.js';
import type { FeatureExtractor } from './types.js';

/** Name and version of the bundled weights; bump when the architecture or training changes. */
export const MNIST_CLASSIFIER_NAME = 'mnist-classifier-v1';
/** Width of the penultimate layer, the features used for FID on MNIST-like data. */
export const MNIST_CLASSIFIER_DIMS = 128;
const INPUT: InputSpec = { height: 28, width: 28, channels: 1 };

/**
 * The bundled MNIST classifier (LeNet-style): conv 5×5×32 → ReLU → max-pool 2 → conv 5×5×64 → ReLU → max-pool 2 →
 * dense 128 → ReLU ("features", the penultimate layer) → dropout 0.3 → dense 10 ("logits"). Input [B, 28, 28, 1] in
 * [-1, 1]. About 185k parameters (0.74 MB in float32). scripts/train-mnist-classifier.ts trains it.
 */
export function buildMnistClassifier(): tfl.LayersModel {
  const input = tfl.input({ shape: [28, 28, 1], name: 'image' });
  let x = tfl.layers.conv2d({ filters: 32, kernelSize: 5, activation: 'relu', name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 64, kernelSize: 5, activation: 'relu', name: 'conv2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: MNIST_CLASSIFIER_DIMS, activation: 'relu', name: 'features' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.3, name: 'dropout' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 10, name: 'logits' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: 'mnist_classifier' });
}

/** Folder of the shipped weights (model.json + weights.bin). */
export function mnistClassifierDir(): string {
  return bundledWeightsDir('mnist-classifier');
}

/** Loads the classifier from a model.json (default: the weights shipped in this package). */
export async function loadMnistClassifier(modelJson = join(mnistClassifierDir(), 'model.json')): Promise<tfl.LayersModel> {
  const artifacts = await readModelFile(modelJson);
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

/**
 * Feature extractor from the bundled MNIST classifier: 128-d penultimate (post-ReLU) activations, and class
 * probabilities for the Inception Score. Images other than 28×28 are resized bilinearly, RGB is turned to luma;
 * `resizeFor` says so, and the pipeline records it. Numbers from it are comparable only with numbers from the same
 * extractor name and resize. `imageShape` ([H, W, C], default [28, 28, 1]) only sets the `resize` description.
 */
export async function mnistExtractor(options: { modelJson?: string; imageShape?: readonly number[] } = {}): Promise<FeatureExtractor> {
  const classifier = await loadMnistClassifier(options.modelJson);
  const featureLayer = classifier.getLayer('features');
  if (!featureLayer) throw new FidError('the MNIST classifier has no "features" layer');
  const both = tfl.model({ inputs: classifier.inputs, outputs: [featureLayer.output as tfl.SymbolicTensor, classifier.outputs[0]] });
  const run = (images: tf.Tensor4D) => tf.tidy(() => both.predict(prepareImages(images, INPUT)) as [tf.Tensor2D, tf.Tensor2D]);
  return {
    name: MNIST_CLASSIFIER_NAME,
    dims: MNIST_CLASSIFIER_DIMS,
    resize: describeResize(INPUT, [0, ...(options.imageShape ?? [28, 28, 1])]),
    resizeFor: (shape) => describeResize(INPUT, [0, ...shape]),
    extract(images) {
      const [features, logits] = run(images);
      logits.dispose();
      return features;
    },
    classify(images) {
      const [features, logits] = run(images);
      features.dispose();
      const probabilities = tf.softmax(logits);
      logits.dispose();
      return probabilities;
    },
    dispose() {
      classifier.dispose();
    },
  };
}
