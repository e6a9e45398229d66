import * as tf from '@tensorflow/tfjs-core';
import { installNativeAdam } from './adam.js';
import { installNativeBatchNorm } from './batch-norm.js';
import { registerPhaseInputGradient } from './conv-input-gradient.js';
import { LEAKY_RELU_GRAD_KERNEL } from '../leaky-relu-gradient.js';
import { nativeDtype, type NativeAttr, type NativeBackend } from './binding.js';

type KernelArgs = Parameters<tf.KernelFunc>[0];

function typeAttr(b: NativeBackend): NativeAttr {
  return { name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}

/**
 * Step(x, α) = x > 0 ? 1 : α, the factor of the ReLU and leaky-ReLU gradients, as two TensorFlow ops (OnesLike,
 * LeakyReluGrad). tfjs-node's is six (IsNan, Greater, Ones, Fill, Where, Select) inside a tidy, which also breaks when
 * the engine's leaky-ReLU gradient calls it off the tape. NaN maps to α instead of NaN (the trainer stops on a non-finite
 * loss either way).
 */
function step({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as NativeBackend;
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype !== 'float32') throw new Error(`Gantry Step on tensorflow takes float32, got ${x.dtype}`);
  const ones = b.executeSingleOutput('OnesLike', [typeAttr(b)], [x]);
  const out = b.executeSingleOutput('LeakyReluGrad', [
    typeAttr(b),
    { name: 'alpha', type: b.binding.TF_ATTR_FLOAT, value: (attrs as unknown as tf.StepAttrs).alpha ?? 0 },
  ], [ones, x]);
  ones.dispose();
  return out;
}

/**
 * conv2d + bias + activation. tfjs-node adds the bias with a broadcasting Add (through the engine: a second kernel
 * dispatch and a general broadcast loop); TensorFlow's BiasAdd is the op its own layers use.
 */
function biasAdd(b: NativeBackend, x: tf.Tensor, bias: tf.TensorInfo): tf.Tensor {
  return b.executeSingleOutput('BiasAdd', [typeAttr(b), { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' }], [x, bias]);
}

/** dy · (x > 0 ? 1 : α) as TensorFlow's LeakyReluGrad: one pass instead of Step's two ops and a Mul. */
function leakyReluGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as NativeBackend;
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  return b.executeSingleOutput('LeakyReluGrad', [
    typeAttr(b),
    { name: 'alpha', type: b.binding.TF_ATTR_FLOAT, value: (attrs as unknown as tf.LeakyReluAttrs).alpha },
  ], [dy, x]);
}

let stockFusedConv: tf.KernelFunc | undefined;
let stockFusedMatMul: tf.KernelFunc | undefined;

function withBiasAdd(stock: () => tf.KernelFunc | undefined) {
  return (args: KernelArgs): tf.TensorInfo => {
    const b = args.backend as NativeBackend;
    const { bias, preluActivationWeights } = args.inputs as { bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
    const attrs = args.attrs as unknown as { activation?: string; leakyreluAlpha?: number };
    const bare = stock()!({ ...args, inputs: { ...args.inputs, bias: undefined as never, preluActivationWeights: undefined as never }, attrs: { ...attrs, activation: 'linear' } as never }) as tf.Tensor;
    let out = bare;
    if (bias != null && bias.shape.length === 1) {
      out = biasAdd(b, bare, bias);
      bare.dispose();
    } else if (bias != null) {
      out = tf.add(bare, bias as tf.Tensor);
      bare.dispose();
    }
    if (attrs.activation && attrs.activation !== 'linear') {
      const act = b.applyActivation(out, attrs.activation, preluActivationWeights as tf.Tensor | undefined, attrs.leakyreluAlpha);
      if (act !== out) out.dispose();
      out = act;
    }
    return out;
  };
}

/**
 * Reshape and Cast that share the input's TensorFlow tensor when nothing changes. tfjs's Add/Sub/broadcast gradients
 * reshape every gradient to its input's shape, saved tensors' gradients Cast to float32, and tfjs-node runs each as a
 * TensorFlow op (Reshape also uploads its shape as a new tensor): about a fifth of an unrolled toy step's kernel calls.
 * A TensorFlow tensor carries its shape, so only an unchanged shape may share it (like tfjs-node's own Identity).
 */
function passThroughWhenUnchanged(name: string, unchanged: (args: KernelArgs) => boolean): void {
  const stock = tf.getKernel(name, 'tensorflow')?.kernelFunc;
  if (!stock) return;
  tf.unregisterKernel(name, 'tensorflow');
  tf.registerKernel({
    kernelName: name,
    backendName: 'tensorflow',
    kernelFunc: ((args: KernelArgs) => {
      if (!unchanged(args)) return stock(args);
      const { x } = args.inputs as { x: tf.TensorInfo };
      (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as tf.KernelFunc,
  });
}

/** int32 shape tensors in the addon by shape, kept for the process (a training step reuses a few dozen shapes). */
const shapeTensors = new Map<string, number>();

/**
 * Reshape with its target shape uploaded once per distinct shape. tfjs-node's kernel makes a tfjs int32 tensor of the
 * shape for every call (engine bookkeeping, an upload to TensorFlow, a delete): most of a step's uploads, since
 * tfjs's gradients reshape every reduced gradient. Other dtypes than float32/int32/bool go to tfjs-node's kernel.
 */
function reshapeWithCachedShape(stock: tf.KernelFunc): tf.KernelFunc {
  return ((args: KernelArgs) => {
    const backend = args.backend as NativeBackend;
    const b = backend.binding;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const dtype = nativeDtype(b, x.dtype);
    if (dtype == null) return stock(args);
    const { shape } = args.attrs as unknown as tf.ReshapeAttrs;
    const key = shape.join(',');
    let shapeId = shapeTensors.get(key);
    if (shapeId == null) {
      if (shapeTensors.size >= 512) {
        for (const id of shapeTensors.values()) b.deleteTensor(id);
        shapeTensors.clear();
      }
      shapeId = b.createTensor([shape.length], b.TF_INT32, Int32Array.from(shape));
      shapeTensors.set(key, shapeId);
    }
    const attrs = [
      { name: 'T', type: b.TF_ATTR_TYPE, value: dtype },
      { name: 'Tshape', type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
    ];
    const [xId] = backend.getInputTensorIds([x]);
    return backend.createOutputTensor(b.executeOp('Reshape', attrs, [xId, shapeId], 1)[0]);
  }) as tf.KernelFunc;
}

const sameShape = ({ inputs, attrs }: KernelArgs): boolean => {
  const { x } = inputs as { x: tf.TensorInfo };
  const { shape } = attrs as unknown as tf.ReshapeAttrs;
  return shape.length === x.shape.length && shape.every((n, i) => n === x.shape[i]);
};
const sameDtype = ({ inputs, attrs }: KernelArgs): boolean => (inputs as { x: tf.TensorInfo }).x.dtype === (attrs as unknown as tf.CastAttrs).dtype;

let registered = false;

/** Registers the engine's kernels for tfjs-node's `tensorflow` backend (idempotent). */
export function registerNativeKernels(): void {
  if (registered) return;
  registered = true;
  installNativeAdam();
  installNativeBatchNorm();
  tf.unregisterKernel(tf.Step, 'tensorflow');
  tf.registerKernel({ kernelName: tf.Step, backendName: 'tensorflow', kernelFunc: step as tf.KernelFunc });
  tf.registerKernel({ kernelName: LEAKY_RELU_GRAD_KERNEL, backendName: 'tensorflow', kernelFunc: leakyReluGrad as tf.KernelFunc });
  registerPhaseInputGradient();
  const stockReshape = tf.getKernel(tf.Reshape, 'tensorflow')?.kernelFunc;
  if (stockReshape) {
    tf.unregisterKernel(tf.Reshape, 'tensorflow');
    tf.registerKernel({ kernelName: tf.Reshape, backendName: 'tensorflow', kernelFunc: reshapeWithCachedShape(stockReshape) });
  }
  passThroughWhenUnchanged(tf.Reshape, sameShape);
  passThroughWhenUnchanged(tf.Cast, sameDtype);
  stockFusedConv = tf.getKernel(tf.FusedConv2D, 'tensorflow')?.kernelFunc;
  stockFusedMatMul = tf.getKernel(tf._FusedMatMul, 'tensorflow')?.kernelFunc;
  if (stockFusedConv) {
    tf.unregisterKernel(tf.FusedConv2D, 'tensorflow');
    tf.registerKernel({ kernelName: tf.FusedConv2D, backendName: 'tensorflow', kernelFunc: withBiasAdd(() => stockFusedConv) as tf.KernelFunc });
  }
  if (stockFusedMatMul) {
    tf.unregisterKernel(tf._FusedMatMul, 'tensorflow');
    tf.registerKernel({ kernelName: tf._FusedMatMul, backendName: 'tensorflow', kernelFunc: withBiasAdd(() => stockFusedMatMul) as tf.KernelFunc });
  }
}
