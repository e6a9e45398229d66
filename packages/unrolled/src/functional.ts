import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { GantryError } from '@gantry/core';

/** A layer's forward pass with its weights passed in explicitly (indices into the model's trainable weights). */
type Step = (x: tf.Tensor, params: readonly tf.Tensor[]) => tf.Tensor;

/** The parts of tfjs-layers layers this module reads (their fields are not in the public typings). */
interface LayerInternals {
  name: string;
  getClassName(): string;
  inboundNodes: { inboundLayers: unknown[] }[];
  kernel?: LayerVariable;
  bias?: LayerVariable;
  useBias?: boolean;
  activation?: { apply(x: tf.Tensor): tf.Tensor };
  alpha?: number;
  maxValue?: number | null;
  trainableWeights: LayerVariable[];
}

export interface FunctionalModel {
  /** The model's trainable weights, in the order `forward` takes them (= `model.trainableWeights`). */
  readonly weights: readonly LayerVariable[];
  /** The model's output for `x` computed from `params` instead of the stored weights: differentiable in both. */
  forward(x: tf.Tensor, params: readonly tf.Tensor[]): tf.Tensor;
}

const SUPPORTED = 'Dense, LeakyReLU, ReLU (without maxValue) and Activation layers';

/**
 * tfjs records the copy of an op's saved *output* on the gradient tape before the op itself, so a second-order
 * gradient through an op whose gradient reads its output (tanh, sigmoid, exp, elu, softmax) silently loses a term.
 * These versions save their input instead and recompute, which keeps second-order gradients exact.
 */
const tanhFromInput = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return { value: tf.tanh(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sub(1, tf.square(tf.tanh(saved[0])))) };
}) as (x: tf.Tensor) => tf.Tensor;

const sigmoidFromInput = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.sigmoid(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const s = tf.sigmoid(saved[0]);
      return tf.mul(dy, tf.mul(s, tf.sub(1, s)));
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

const ACTIVATIONS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  softplus: (x) => tf.softplus(x),
  tanh: tanhFromInput,
  sigmoid: sigmoidFromInput,
};

function activationOf(layer: LayerInternals): (x: tf.Tensor) => tf.Tensor {
  const name = (layer.activation as unknown as { getClassName(): string }).getClassName();
  const fn = ACTIVATIONS[name];
  if (!fn) {
    throw new GantryError(
      `Full unrolling supports the activations ${Object.keys(ACTIVATIONS).join(', ')} (and LeakyReLU layers); layer "${layer.name}" uses ${name}`,
    );
  }
  return fn;
}

/**
 * Rewrites a chain-shaped model of Dense, LeakyReLU, ReLU and Activation layers as a pure function of explicit
 * weight tensors, so that gradients can flow through updates of those weights (full unrolling). Anything else
 * (convolutions, normalization, dropout, branches, shared layers) is rejected with an error naming the layer.
 */
export function functionalModel(model: LayersModel): FunctionalModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new GantryError(`Full unrolling needs a discriminator with one input and one output; "${model.name}" has ${model.inputs.length} and ${model.outputs.length}`);
  }
  const weights = model.trainableWeights;
  const indexOf = (v: LayerVariable | undefined, layer: string): number => {
    const i = v ? weights.indexOf(v) : -1;
    if (i < 0) throw new GantryError(`Full unrolling: a weight of layer "${layer}" is not trainable; freeze nothing in the discriminator`);
    return i;
  };
  const steps: Step[] = [];
  const used = new Set<number>();
  let previous: unknown;
  for (const raw of model.layers) {
    const layer = raw as unknown as LayerInternals;
    const kind = layer.getClassName();
    if (kind === 'InputLayer') {
      previous = raw;
      continue;
    }
    if (layer.inboundNodes.length !== 1 || (previous && layer.inboundNodes[0].inboundLayers[0] !== previous)) {
      throw new GantryError(`Full unrolling needs a plain chain of layers; layer "${layer.name}" is shared or branches`);
    }
    previous = raw;
    switch (kind) {
      case 'Dense': {
        const k = indexOf(layer.kernel, layer.name);
        const b = layer.useBias ? indexOf(layer.bias, layer.name) : -1;
        used.add(k);
        if (b >= 0) used.add(b);
        const activation = activationOf(layer);
        steps.push((x, p) => {
          if (x.rank !== 2) throw new GantryError(`Full unrolling supports Dense layers on [batch, features] inputs; "${layer.name}" gets rank ${x.rank}`);
          const y = tf.matMul(x, p[k]);
          return activation(b >= 0 ? tf.add(y, p[b]) : y);
        });
        break;
      }
      case 'LeakyReLU': {
        const alpha = layer.alpha!;
        steps.push((x) => tf.leakyRelu(x, alpha));
        break;
      }
      case 'ReLU':
        if (layer.maxValue != null) throw new GantryError(`Full unrolling does not support ReLU with maxValue (layer "${layer.name}")`);
        steps.push((x) => tf.relu(x));
        break;
      case 'Activation': {
        const activation = activationOf(layer);
        steps.push((x) => activation(x));
        break;
      }
      default:
        throw new GantryError(`Full unrolling supports discriminators made of ${SUPPORTED}; layer "${layer.name}" is ${kind}`);
    }
  }
  if (used.size !== weights.length) {
    throw new GantryError(`Full unrolling: the discriminator has trainable weights outside ${SUPPORTED}`);
  }
  return {
    weights,
    forward: (x, params) => {
      if (params.length !== weights.length) throw new GantryError(`forward expects ${weights.length} weight tensors, got ${params.length}`);
      return steps.reduce((h, step) => step(h, params), x);
    },
  };
}
