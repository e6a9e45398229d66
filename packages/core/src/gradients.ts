import * as tf from '@tensorflow/tfjs-core';

/**
 * Comparison and rounding ops are piecewise constant, so their gradient is zero almost everywhere. tfjs registers no
 * gradient for them, which breaks nested gradients: leaky ReLU's gradient uses `Greater`, so differentiating a
 * gradient (gradient penalty, R1) fails with "gradient function not found for Greater". Registering zeros fixes it.
 */
const PIECEWISE_CONSTANT_BINARY = [
  'Greater',
  'GreaterEqual',
  'Less',
  'LessEqual',
  'Equal',
  'NotEqual',
  'LogicalAnd',
  'LogicalOr',
  'LogicalXor',
] as const;

const PIECEWISE_CONSTANT_UNARY = ['LogicalNot', 'IsNan', 'IsInf', 'IsFinite', 'ZerosLike', 'OnesLike'] as const;

let registered = false;

/**
 * A backend kernel (inputs dy, x; attr alpha) that computes dy · (x > 0 ? 1 : α) in one pass — the same float32
 * products as multiplying by the Step factor. Backends that have one (tensorflow: TensorFlow's `LeakyReluGrad`, from
 * @gantry/engine) get it for products that no tape records.
 */
export const LEAKY_RELU_GRAD_KERNEL = 'GantryLeakyReluGrad';

/**
 * True while a gradient tape records the ops being run (the gradient being computed will itself be differentiated;
 * inside a kernel or a custom-gradient node's forward pass nothing records).
 */
export function tapeRecording(): boolean {
  const state = tf.engine().state as unknown as { gradientDepth: number; kernelDepth: number };
  return state.gradientDepth > 0 && state.kernelDepth === 0;
}

/**
 * dy · step(x, α) = dy · (x > 0 ? 1 : α), the (leaky) ReLU derivative, with the factor off the tape (its derivative is
 * zero almost everywhere): one pass of the backend's `LEAKY_RELU_GRAD_KERNEL` when no tape records and the backend
 * has it, else dy times an untaped Step. Float32 x.
 */
export function timesStep(dy: tf.Tensor, x: tf.Tensor, alpha: number): tf.Tensor {
  if (!tapeRecording()) {
    const dx = untapedKernel(LEAKY_RELU_GRAD_KERNEL, { dy, x }, { alpha });
    if (dx != null) return dx;
  }
  const factor = untapedKernel(tf.Step, { x }, { alpha });
  if (factor == null) return tf.where(tf.greater(x, 0), dy, tf.mul(dy, alpha));
  const dx = tf.mul(dy, factor);
  factor.dispose();
  return dx;
}

/**
 * Runs one kernel of the active backend below the engine, so the result is a constant for the gradient tape (no tape
 * node, no copies of saved inputs); null when the backend has no such kernel. For masks of piecewise-linear functions:
 * their derivative is zero almost everywhere, and recording them makes a gradient of the gradient back-propagate and
 * add zeros (through a critic's whole forward pass for a gradient penalty, through every update of an unrolled
 * lookahead).
 */
export function untapedKernel(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor | null {
  const engine = tf.engine();
  const config = tf.getKernel(kernelName, engine.backendName);
  if (config == null) return null;
  const out = config.kernelFunc({ inputs, backend: engine.backend, attrs });
  if (Array.isArray(out)) return null;
  // tfjs-node's kernels return Tensors already (tracked by the engine), other backends TensorInfos.
  return out instanceof tf.Tensor ? out : engine.makeTensorFromTensorInfo(out);
}

/**
 * tfjs 4.22 differentiates tanh, sigmoid, exp and elu through their saved *outputs*, and a saved output is detached
 * from the tape: the second derivative silently loses a term (d/da[d/dw tanh(w·a)] comes out as 1 − t² alone). These
 * gradients recompute the factor from the saved input instead, so nested gradients (gradient penalty, R1, unrolling)
 * through such activations are exact. One extra elementwise op per backward pass.
 */
function registerInputSavingGradients(): void {
  const unary = (kernelName: string, factor: (x: tf.Tensor) => tf.Tensor) =>
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tf.Tensor, factor(saved[0])) }),
    });
  unary(tf.Tanh, (x) => tf.sub(1, tf.square(tf.tanh(x))));
  unary(tf.Sigmoid, (x) => {
    const s = tf.sigmoid(x);
    return tf.mul(s, tf.sub(1, s));
  });
  unary(tf.Exp, (x) => tf.exp(x));
  unary(tf.Elu, (x) => tf.where(tf.greater(x, 0), tf.onesLike(x), tf.exp(x)));
}

/**
 * Mean's and Sum's gradients without `ones(x.shape)`: tfjs builds that tensor in JavaScript and uploads it, which
 * for batchnorm's moments at batch 1024 (1024x14x14x64 values) is 51 MB filled and copied per call, twice per step,
 * and half of the host time of a step. Broadcasting dy does the same on the device. The values are identical
 * (dy times 1, divided by the count), and the gradient of the gradient still exists (broadcastTo is a Tile).
 * Part of the required set: gradients are not per backend, so this must not depend on whether WebGPU started.
 */
function registerBroadcastReduceGradients(): void {
  const axesOf = (x: tf.Tensor, axis: number | number[]) => tf.util.parseAxisParam(axis, x.shape);
  /**
   * dy (x's shape with the reduced axes removed) broadcast back to x's shape. Runs of neighbouring axes that are all
   * reduced or all kept are merged first, so the Tile has the fewest dimensions: WebGPU's Tile runs on the CPU from
   * rank 5 on (minibatch stddev's [group, n, h, w, c] mean), which cannot read GPU data in Node.
   */
  const broadcastBack = (dy: tf.Tensor, x: tf.Tensor, axes: number[]): tf.Tensor => {
    const reduced = new Set(axes);
    const from: number[] = [];
    const to: number[] = [];
    x.shape.forEach((size, a) => {
      const isReduced = reduced.has(a);
      const sameRun = a > 0 && reduced.has(a - 1) === isReduced;
      if (!sameRun) {
        from.push(1);
        to.push(1);
      }
      to[to.length - 1] *= size;
      if (!isReduced) from[from.length - 1] *= size;
    });
    return tf.reshape(tf.broadcastTo(tf.reshape(dy, from), to), x.shape);
  };
  tf.registerGradient({
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as tf.SumAttrs;
      return { x: () => broadcastBack(dy as tf.Tensor, x, axesOf(x, axis)) };
    },
  });
  tf.registerGradient({
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as tf.MeanAttrs;
      return {
        x: () => {
          const axes = axesOf(x, axis);
          const count = tf.util.sizeFromShape(axes.map((a) => x.shape[a]));
          return tf.div(broadcastBack(dy as tf.Tensor, x, axes), count);
        },
      };
    },
  });
}

/**
 * Makes nested gradients (gradient penalty, R1/R2, unrolled updates) correct on every backend; idempotent and global,
 * like tfjs's gradient registry. Registers zero gradients for comparison and logical ops (leaky ReLU's gradient uses
 * `Greater`), the gradient of Conv2DBackpropFilter (differentiating through a weight gradient), tanh/sigmoid/exp/elu
 * gradients that save their input (tfjs's saved outputs are detached, so second derivatives lost a term) and Sum/Mean
 * gradients that broadcast dy instead of filling a ones tensor on the host. `Trainer.setup` calls it, so code that
 * picks a backend with `tf.setBackend` trains correctly too.
 */
export function registerNestedGradientFixes(): void {
  if (registered) return;
  registered = true;
  registerInputSavingGradients();
  registerBroadcastReduceGradients();
  for (const kernelName of PIECEWISE_CONSTANT_BINARY) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      // Zeros shaped like each input (not like dy): inputs may broadcast against each other.
      gradFunc: (_dy, saved) => ({ a: () => tf.zerosLike(saved[0]), b: () => tf.zerosLike(saved[1]) }),
    });
  }
  for (const kernelName of PIECEWISE_CONSTANT_UNARY) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (_dy, saved) => ({ x: () => tf.zerosLike(saved[0]) }),
    });
  }
  if (tf.getGradient(tf.Conv2DBackpropFilter) == null) {
    tf.registerGradient({
      kernelName: tf.Conv2DBackpropFilter,
      inputsToSave: ['x', 'dy'],
      // dW = F(x, dy) is bilinear: <ddW, F(x, dy)> = <x, backpropInput(dy, ddW)> = <dy, conv2d(x, ddW)>.
      gradFunc: (ddw, saved, attrs) => {
        const [x, dy] = saved as [tf.Tensor4D, tf.Tensor4D];
        const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
        const filter = ddw as tf.Tensor4D;
        return {
          x: () =>
            tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, {
              strides,
              pad,
              dataFormat,
              dimRoundingMode,
              inputShape: x.shape,
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
          dy: () => tf.conv2d(x, filter, strides, pad, dataFormat, 1, dimRoundingMode),
        };
      },
    });
  }
}
