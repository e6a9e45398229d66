import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { GantryError, fromMemberAxis, timesStep, toMemberAxis } from '@gantry/core';
import { tapeNode } from './tape.js';

/**
 * One link of the chain: a Dense product (+ bias) or an activation. `forward` takes the weights explicitly (indices
 * into the model's trainable weights); `backward` is the link's gradient written out as ops, given its input, its
 * output and the gradient at its output: it adds the weight gradients to `grads` and returns the input gradient.
 */
interface Link {
  forward(x: tf.Tensor, params: readonly tf.Tensor[], secondOrderSafe: boolean): tf.Tensor;
  backward(x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor, params: readonly tf.Tensor[], grads: tf.Tensor[], needInput: boolean): tf.Tensor | undefined;
}

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
  /** MemberDense: models side by side. */
  members?: number;
}

export interface FunctionalModel {
  /** The model's trainable weights, in the order `forward` takes them (= `model.trainableWeights`). */
  readonly weights: readonly LayerVariable[];
  /**
   * Models side by side (`stackMembers`): batches are member-major, so join and split them with `concatMembers` /
   * `splitMembers` of this count. 1 for an ordinary model.
   */
  readonly members: number;
  /** The model's output for `x` computed from `params` instead of the stored weights: differentiable in both. */
  forward(x: tf.Tensor, params: readonly tf.Tensor[]): tf.Tensor;
  /**
   * The output for `x` and a function that, given the gradient of a loss at that output, returns the loss's gradient
   * with respect to every weight: backpropagation written out as ops (a few per layer), with no gradient tape of its
   * own. An enclosing tape (the generator's) records those ops, so the weight gradients are differentiable once more,
   * which is what full unrolling needs, at a fraction of the kernel calls of `tf.grads` inside a tape.
   */
  forwardBackward(x: tf.Tensor, params: readonly tf.Tensor[]): { output: tf.Tensor; backward(dOutput: tf.Tensor): tf.Tensor[] };
}

const SUPPORTED = 'Dense or MemberDense, LeakyReLU, ReLU (without maxValue) and Activation layers';

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

interface Activation {
  /** Safe under a gradient of a gradient (the tape bug above). */
  secondOrderSafe: (a: tf.Tensor) => tf.Tensor;
  /** Differentiated at most once by any tape (the explicit backward pass): tfjs's own op. */
  plain: (a: tf.Tensor) => tf.Tensor;
  /** dy · f'(a), from the input a or the output y = f(a). */
  derivative: (a: tf.Tensor, y: tf.Tensor, dy: tf.Tensor) => tf.Tensor;
}

/**
 * dy · step(a, α), the (leaky) ReLU derivative of the explicit backward pass, as one node of the generator's tape: the
 * step mask stays off the tape (its derivative is zero almost everywhere; recorded, the generator's backward pass added
 * zeros through every lookahead update's mask), and the product's gradient with respect to dy is the same product.
 * On tensorflow both are one `LeakyReluGrad` op instead of OnesLike, LeakyReluGrad and Mul. The same values.
 */
function reluDerivative(dy: tf.Tensor, a: tf.Tensor, alpha = 0): tf.Tensor {
  return tapeNode(
    { dy },
    (save) => {
      save([a]);
      return [timesStep(dy, a, alpha)];
    },
    ([dOut], [aSaved]) => ({ dy: () => timesStep(dOut, aSaved, alpha) }),
  )[0];
}

const ACTIVATIONS: Record<string, Activation> = {
  linear: { secondOrderSafe: (a) => a, plain: (a) => a, derivative: (_a, _y, dy) => dy },
  relu: { secondOrderSafe: (a) => tf.relu(a), plain: (a) => tf.relu(a), derivative: (a, _y, dy) => reluDerivative(dy, a) },
  softplus: { secondOrderSafe: (a) => tf.softplus(a), plain: (a) => tf.softplus(a), derivative: (a, _y, dy) => tf.mul(dy, tf.sigmoid(a)) },
  tanh: { secondOrderSafe: tanhFromInput, plain: (a) => tf.tanh(a), derivative: (_a, y, dy) => tf.mul(dy, tf.sub(1, tf.square(y))) },
  sigmoid: { secondOrderSafe: sigmoidFromInput, plain: (a) => tf.sigmoid(a), derivative: (_a, y, dy) => tf.mul(dy, tf.mul(y, tf.sub(1, y))) },
};

const leakyRelu = (alpha: number): Activation => ({
  secondOrderSafe: (a) => tf.leakyRelu(a, alpha),
  plain: (a) => tf.leakyRelu(a, alpha),
  derivative: (a, _y, dy) => reluDerivative(dy, a, alpha),
});

function activationLink(f: Activation): Link {
  return {
    forward: (x, _p, safe) => (safe ? f.secondOrderSafe(x) : f.plain(x)),
    backward: (x, y, dy) => f.derivative(x, y, dy),
  };
}

function activationOf(layer: LayerInternals): Activation {
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
  const links: Link[] = [];
  const used = new Set<number>();
  let previous: unknown;
  // Member models (MemberDense) run the whole chain on [S, n, features]: one reshape in, one out.
  let members: number | undefined;
  let plainDense = false;
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
        plainDense = true;
        if (members !== undefined) throw new GantryError(`Full unrolling: layer "${layer.name}" mixes Dense with member layers`);
        links.push({
          forward: (x, p) => {
            if (x.rank !== 2) throw new GantryError(`Full unrolling supports Dense layers on [batch, features] inputs; "${layer.name}" gets rank ${x.rank}`);
            const y = tf.matMul(x, p[k]);
            return b >= 0 ? tf.add(y, p[b]) : y;
          },
          backward: (x, _y, dy, p, grads, needInput) => {
            grads[k] = tf.matMul(x, dy, true, false);
            if (b >= 0) grads[b] = tf.sum(dy, 0);
            return needInput ? tf.matMul(dy, p[k], false, true) : undefined;
          },
        });
        if (activation !== ACTIVATIONS.linear) links.push(activationLink(activation));
        break;
      }
      case 'GantryMemberDense': {
        const k = indexOf(layer.kernel, layer.name);
        const b = layer.useBias ? indexOf(layer.bias, layer.name) : -1;
        used.add(k);
        if (b >= 0) used.add(b);
        if (plainDense || (members !== undefined && members !== layer.members)) {
          throw new GantryError(`Full unrolling: layer "${layer.name}" mixes member layers of different counts or with Dense layers`);
        }
        members = layer.members!;
        links.push({
          // x and y are [S, n, features]; kernels [S, in, out], biases [S, 1, out]: batched products per member.
          forward: (x, p) => {
            const y = tf.matMul(x, p[k]);
            return b >= 0 ? tf.add(y, p[b]) : y;
          },
          backward: (x, _y, dy, p, grads, needInput) => {
            grads[k] = tf.matMul(x, dy, true, false);
            if (b >= 0) grads[b] = tf.sum(dy, 1, true);
            return needInput ? tf.matMul(dy, p[k], false, true) : undefined;
          },
        });
        break;
      }
      case 'LeakyReLU':
        links.push(activationLink(leakyRelu(layer.alpha!)));
        break;
      case 'ReLU':
        if (layer.maxValue != null) throw new GantryError(`Full unrolling does not support ReLU with maxValue (layer "${layer.name}")`);
        links.push(activationLink(ACTIVATIONS.relu));
        break;
      case 'Activation':
        links.push(activationLink(activationOf(layer)));
        break;
      default:
        throw new GantryError(`Full unrolling supports discriminators made of ${SUPPORTED}; layer "${layer.name}" is ${kind}`);
    }
  }
  if (used.size !== weights.length) {
    throw new GantryError(`Full unrolling: the discriminator has trainable weights outside ${SUPPORTED}`);
  }
  if (members !== undefined) {
    const S = members;
    links.unshift({
      forward: (x) => {
        if (x.rank !== 2) throw new GantryError(`Full unrolling supports member models on [batch, features] inputs; got rank ${x.rank}`);
        return toMemberAxis(x, S);
      },
      backward: (x, _y, dy, _p, _g, needInput) => (needInput ? tf.reshape(dy, x.shape) : undefined),
    });
    links.push({ forward: (x) => fromMemberAxis(x), backward: (x, _y, dy) => tf.reshape(dy, x.shape) });
  }
  const dataLinks = members === undefined ? 0 : 1;
  const checkCount = (params: readonly tf.Tensor[]) => {
    if (params.length !== weights.length) throw new GantryError(`forward expects ${weights.length} weight tensors, got ${params.length}`);
  };
  return {
    weights,
    members: members ?? 1,
    forward: (x, params) => {
      checkCount(params);
      return links.reduce((h, link) => link.forward(h, params, true), x);
    },
    forwardBackward: (x, params) => {
      checkCount(params);
      // activations[i] is link i's input; the last entry is the output.
      const activations = [x];
      for (const link of links) activations.push(link.forward(activations.at(-1)!, params, false));
      return {
        output: activations.at(-1)!,
        backward: (dOutput) => {
          const grads = new Array<tf.Tensor>(weights.length);
          let dy = dOutput;
          for (let i = links.length - 1; i >= 0; i--) {
            // The input of the first link (after the member reshape) is data: its gradient is not needed.
            dy = links[i].backward(activations[i], activations[i + 1], dy, params, grads, i > dataLinks)!;
          }
          return grads;
        },
      };
    },
  };
}
