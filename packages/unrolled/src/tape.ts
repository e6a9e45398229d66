import * as tf from '@tensorflow/tfjs-core';

interface TapeEngine {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: (tensors: tf.Tensor[]) => void) => tf.Tensor | tf.Tensor[];
    backwardsFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor | tf.Tensor[];
}

/**
 * Runs `forward` as one node of the gradient tape (tfjs's customGrad, with several outputs and lazy input
 * gradients): the ops inside are not recorded (no nodes, no copies of the tensors each op saves), `save` keeps what
 * `backward` needs, and `backward` maps the outputs' gradients (zeros for an output nothing downstream uses) to a
 * function per input; tfjs calls only those of inputs on the gradient's path. Toy steps are dispatch-bound and a
 * recorded op costs a node plus a copy per saved tensor, so fixed chains of ops in the lookahead are worth a node.
 */
export function tapeNode<Name extends string>(
  inputs: Record<Name, tf.Tensor>,
  forward: (save: (tensors: tf.Tensor[]) => void) => tf.Tensor[],
  backward: (dys: tf.Tensor[], saved: tf.Tensor[]) => Record<Name, () => tf.Tensor>,
): tf.Tensor[] {
  const engine = tf.engine() as unknown as TapeEngine;
  const outputs = engine.runKernelFunc({
    inputs,
    forwardFunc: (_backend, save) => forward(save),
    // One output arrives as a tensor, several as an array.
    backwardsFunc: (dys, saved) => backward(Array.isArray(dys) ? dys : [dys], saved),
  });
  return Array.isArray(outputs) ? outputs : [outputs];
}
