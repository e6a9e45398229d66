import * as tf from '@tensorflow/tfjs-core';

/**
 * tfjs-core's fused conv2d and matMul (every tfjs-layers Conv2D and Dense) run under a gradient tape as one kernel in a
 * `customGrad` whose gradient function computes the gradient of *every* input as soon as the backward pass reaches
 * it: the input gradient of a critic's first layer on real images, the critic's filter gradients in the generator step
 * and inside a gradient penalty's inner gradient are all computed and thrown away (per reference WGAN-GP step: 4 filter
 * gradients and 2 input gradients of the 12 + 12 convolutions).
 *
 * The tape names a `customGrad` node after the op scope it runs in (`fusedConv2d__op`, `fusedMatMul__op`) and takes a
 * gradient registered under a node's name in preference to the node's own function (tfjs-core engine.ts,
 * `addTapeNode`). So registering a gradient under those names replaces the eager function with one that computes each
 * input's gradient only when the tape asks for it, with the same ops as tfjs's (`conv2DBackpropInput`,
 * `conv2DBackpropFilter`, `matMul`, the bias sum): the forward kernel is untouched and every gradient that is computed
 * is bit-identical to stock tfjs, in Node and in a bundled page alike (no module object is patched).
 *
 * Under a tape tfjs fuses only linear activations (others run unfused), so dy needs no activation gradient. The node's
 * strides, padding and transposes are not on the tape; the forward kernel's attributes are recorded for the node's
 * output by a wrapper around each backend's FusedConv2D / _FusedMatMul kernel, keyed by the output's data id and
 * checked against the node's inputs.
 */

const CONV_SCOPE = 'fusedConv2d__op';
const MATMUL_SCOPE = 'fusedMatMul__op';
const KERNELS = [tf.FusedConv2D, tf._FusedMatMul];

interface KernelCall {
  attrs: tf.NamedAttrMap;
  inputs: object[];
}

// Kept on globalThis like the kernel registry itself: a second copy of this module (ESM and CJS builds, vitest's
// per-file module graphs) must find the calls the first one's kernel wrappers recorded.
const STATE_KEY = Symbol.for('gantry.engine.lazy-fused-gradients');
interface LazyFusedState {
  calls: WeakMap<object, KernelCall>;
  wrappers: WeakSet<tf.KernelFunc>;
}
const state: LazyFusedState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] ??= {
  calls: new WeakMap(),
  wrappers: new WeakSet(),
}) as LazyFusedState;

function taping(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

function dataIdOf(t: tf.TensorInfo | undefined): object | undefined {
  const id = t?.dataId as unknown;
  return typeof id === 'object' && id !== null ? id : undefined;
}

/** Wraps the backend's kernel (whatever is registered now, Gantry's or stock) so it records its attributes under a tape. */
function wrapKernel(kernelName: string, backendName: string): void {
  const kernel = tf.getKernel(kernelName, backendName);
  if (kernel == null || state.wrappers.has(kernel.kernelFunc)) return;
  const inner = kernel.kernelFunc;
  const kernelFunc: tf.KernelFunc = (args) => {
    const out = inner(args);
    if (taping() && !Array.isArray(out)) {
      const id = dataIdOf(out);
      const inputs = [args.inputs.x ?? args.inputs.a, args.inputs.filter ?? args.inputs.b].map(dataIdOf);
      if (id && inputs.every((i) => i !== undefined)) state.calls.set(id, { attrs: args.attrs ?? {}, inputs: inputs as object[] });
    }
    return out;
  };
  state.wrappers.add(kernelFunc);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...kernel, kernelFunc });
}

/** The attributes of the forward kernel that produced `y` from `first` and `second` (x/filter or a/b). */
function recordedAttrs(op: string, y: tf.Tensor, first: tf.Tensor, second: tf.Tensor): tf.NamedAttrMap {
  const call = state.calls.get(y.dataId as object);
  if (call && call.inputs[0] === first.dataId && call.inputs[1] === second.dataId) return call.attrs;
  throw new Error(
    `gantry: no attributes recorded for the ${op} kernel on backend "${tf.getBackend()}"; call ` +
      `registerLazyFusedGradients() after registering that backend's kernels (useBackend does)`,
  );
}

function biasGradient(bias: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(bias.shape, dy.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, bias.shape);
}

type Thunks = Record<string, () => tf.Tensor>;

function conv2dGradient(dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): Thunks {
  const [filter, x4D, y, bias] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor | undefined];
  // The op returns a rank-3 result for a rank-3 input; the kernel's output y is rank 4.
  const dy4D = (dy as tf.Tensor).rank === 4 ? (dy as tf.Tensor4D) : tf.reshape(dy as tf.Tensor, y.shape);
  const { strides, pad, dataFormat, dilations } = recordedAttrs(tf.FusedConv2D, y, x4D, filter) as unknown as tf.FusedConv2DAttrs;
  if (dataFormat !== 'NHWC') throw new Error(`gantry: the gradient of fused conv2d supports NHWC only, got ${String(dataFormat)}`);
  if (!tf.backend_util.tupleValuesAreOne(dilations ?? 1)) {
    throw new Error(`gantry: the gradient of fused conv2d does not support dilations > 1, got ${String(dilations)}`);
  }
  // The kernels tfjs's conv2DBackpropInput / conv2DBackpropFilter ops run, with the attributes they pass.
  const common = { strides, pad, dataFormat: 'NHWC', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
  const grads: Thunks = {
    0: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dy4D, filter }, { ...common, inputShape: x4D.shape }) as tf.Tensor,
    1: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: x4D, dy: dy4D }, { ...common, filterShape: filter.shape }) as tf.Tensor,
  };
  if (bias != null) grads[2] = () => biasGradient(bias, dy4D);
  return grads;
}

function matMulGradient(dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): Thunks {
  const [a3D, b3D, y, bias] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor | undefined];
  const { transposeA, transposeB } = recordedAttrs(tf._FusedMatMul, y, a3D, b3D) as unknown as tf.BatchMatMulAttrs;
  // tfjs's own gradient reshapes dy to the kernel's output shape (the op may have reshaped its result).
  const g = tf.reshape(dy as tf.Tensor, y.shape);
  const grads: Thunks = {
    0: () => {
      if (!transposeA && !transposeB) return tf.matMul(g, b3D, false, true);
      if (!transposeA) return tf.matMul(g, b3D, false, false);
      if (!transposeB) return tf.matMul(b3D, g, false, true);
      return tf.matMul(b3D, g, true, true);
    },
    1: () => {
      if (!transposeA && !transposeB) return tf.matMul(a3D, g, true, false);
      if (!transposeA) return tf.matMul(g, a3D, true, false);
      if (!transposeB) return tf.matMul(a3D, g, false, false);
      return tf.matMul(g, a3D, true, true);
    },
  };
  if (bias != null) grads[2] = () => biasGradient(bias, g);
  return grads;
}

/**
 * Registers the per-input gradients of tfjs's fused conv2d and matMul (idempotent) and wraps the FusedConv2D and
 * _FusedMatMul kernels of every backend registered now, so that call it again after registering a backend's kernels
 * (`useBackend` does, after Gantry's own). Outside a tape nothing changes.
 */
export function registerLazyFusedGradients(): void {
  if (tf.getGradient(CONV_SCOPE) == null) tf.registerGradient({ kernelName: CONV_SCOPE, gradFunc: conv2dGradient });
  if (tf.getGradient(MATMUL_SCOPE) == null) tf.registerGradient({ kernelName: MATMUL_SCOPE, gradFunc: matMulGradient });
  const backends = Object.keys((tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory);
  for (const backendName of backends) for (const kernelName of KERNELS) wrapKernel(kernelName, backendName);
}
