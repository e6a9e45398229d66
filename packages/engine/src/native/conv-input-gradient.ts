import * as tf from '@tensorflow/tfjs-core';
import type { NativeAttr, NativeBackend, OutputMetadata, TfjsNodeBinding } from './binding.js';

/**
 * Above this many image channels oneDNN's own input gradient is faster (measured: 1 and 3 channels 2–2.6× faster
 * this way, 8 channels 1.6× slower).
 */
export const FEW_CHANNELS = 4;

/** The geometry of a conv whose input gradient (transposed conv) is computed here, and its constants. */
interface Plan {
  /** Image batch, height, width, channels (the gradient's shape); dy's height, width, channels. */
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  k: number;
  /** Stride s and taps per phase t = kernel / s; the top/left padding of the forward conv. */
  s: number;
  t: number;
  top: number;
  left: number;
  /** Phase rows/columns: the gradient's rows are s·row + phase − top. */
  mh: number;
  mw: number;
  /** int32/float32 constant tensors of this geometry, created once (ids in the addon). */
  consts: Record<'dyRows' | 'filterRows' | 'cols' | 'paddings' | 'scatter' | 'begin' | 'size', number>;
}

/**
 * Whether `conv2DBackpropInput` with these attributes goes through `phaseInputGradient`: few image channels, NHWC,
 * equal strides ≥ 2, no dilation, a square kernel that is a multiple of the stride.
 */
function planFor(b: TfjsNodeBinding, dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.Conv2DBackpropInputAttrs): Plan | undefined {
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32' || attrs.dataFormat !== 'NHWC') return undefined;
  const [k, kw, c, outChannels] = filter.shape;
  const [n, h, w, inC] = attrs.inputShape;
  const strides = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
  const s = strides[0];
  if (c > FEW_CHANNELS || inC !== c || k !== kw || strides[1] !== s || s < 2 || k % s !== 0) return undefined;
  const info = tf.backend_util.computeConv2DInfo(attrs.inputShape, filter.shape as [number, number, number, number], strides as [number, number], 1, attrs.pad, attrs.dimRoundingMode);
  const [, oh, ow] = dy.shape;
  if (info.outHeight !== oh || info.outWidth !== ow || outChannels !== dy.shape[3]) return undefined;
  const key = JSON.stringify([n, h, w, c, oh, ow, k, s, info.padInfo.top, info.padInfo.left]);
  let plan = plans.get(key);
  if (plan) return plan;
  const t = k / s;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const mh = Math.floor((h - 1 + top) / s) + 1;
  const mw = Math.floor((w - 1 + left) / s) + 1;
  const i32 = (shape: number[], values: number[]) => b.createTensor(shape, b.TF_INT32, Int32Array.from(values));
  // The scatter filter: input channel (a, p, b, q, ch) of the columns feeds output channel (p, q, ch) at tap
  // (t − 1 − a, t − 1 − b); every weight is 0 or 1, so the conv only adds (exactly) what lands on each pixel.
  const ci = k * k * c;
  const co = s * s * c;
  const scatter = new Float32Array(t * t * ci * co);
  for (let a = 0; a < t; a++)
    for (let p = 0; p < s; p++)
      for (let bb = 0; bb < t; bb++)
        for (let q = 0; q < s; q++)
          for (let ch = 0; ch < c; ch++) {
            const input = (((a * s + p) * t + bb) * s + q) * c + ch;
            const output = (p * s + q) * c + ch;
            scatter[(((t - 1 - a) * t + (t - 1 - bb)) * ci + input) * co + output] = 1;
          }
  plan = {
    n, h, w, c, oh, ow, k, s, t, top, left, mh, mw,
    consts: {
      dyRows: i32([2], [n * oh * ow, outChannels]),
      filterRows: i32([2], [k * k * c, outChannels]),
      cols: i32([4], [n, oh, ow, ci]),
      paddings: i32([4, 2], [0, 0, t - 1, Math.max(0, mh - oh), t - 1, Math.max(0, mw - ow), 0, 0]),
      scatter: b.createTensor([t, t, ci, co], b.TF_FLOAT, scatter),
      begin: i32([4], [0, top, left, 0]),
      size: i32([4], [n, h, w, c]),
    },
  };
  if (plans.size >= 32) clearPlans(b);
  plans.set(key, plan);
  return plan;
}

const plans = new Map<string, Plan>();

function clearPlans(b: TfjsNodeBinding): void {
  for (const plan of plans.values()) for (const id of Object.values(plan.consts)) b.deleteTensor(id);
  plans.clear();
}

/**
 * The input gradient of a stride-s conv (what a transposed conv computes) as a matrix product and a scatter:
 * columns = dy · filterᵀ (each dy pixel's k·k·c contributions), then each contribution added to its image pixel.
 * With few image channels oneDNN's own Conv2DBackpropInput pads the channels to its 16-wide blocks, so the
 * reference generator's last layer (64 → 1 channel) and the critic's first-layer input gradient cost as much as a
 * 16-channel conv: 4.4–4.6 ms per call at batch 64 against 1.6–2.0 ms this way (1 thread, CPU time).
 *
 * The scatter: pixel y of the image gets the columns of dy rows m − a, tap p + s·a, where y + top = s·m + p. For each
 * phase (p, q) that is a t × t correlation over the padded columns with a 0/1 filter, one Conv2D for all phases;
 * DepthToSpace interleaves the phases and a Slice drops the padding rows. Equal to TensorFlow's up to the order of
 * the float32 sums (≤ 1e-6 relative in the tests).
 */
function phaseInputGradient(backend: NativeBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, plan: Plan): tf.Tensor {
  const b = backend.binding;
  const float = { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT };
  const int32 = (name: string) => ({ name, type: b.TF_ATTR_TYPE, value: b.TF_INT32 });
  const op = (name: string, attrs: NativeAttr[], inputs: number[]) => b.executeOp(name, [float, ...attrs], inputs, 1)[0];
  const [dyId, filterId] = backend.getInputTensorIds([dy, filter]);
  const { consts } = plan;
  const temps: number[] = [];
  const keep = (m: OutputMetadata) => {
    temps.push(m.id);
    return m.id;
  };
  try {
    const dyRows = keep(op('Reshape', [int32('Tshape')], [dyId, consts.dyRows]));
    const filterRows = keep(op('Reshape', [int32('Tshape')], [filterId, consts.filterRows]));
    const colRows = keep(
      op('MatMul', [
        { name: 'transpose_a', type: b.TF_ATTR_BOOL, value: false },
        { name: 'transpose_b', type: b.TF_ATTR_BOOL, value: true },
      ], [dyRows, filterRows]),
    );
    const cols = keep(op('Reshape', [int32('Tshape')], [colRows, consts.cols]));
    const padded = keep(op('Pad', [int32('Tpaddings')], [cols, consts.paddings]));
    const phases = keep(
      op('Conv2D', [
        { name: 'strides', type: b.TF_ATTR_INT, value: [1, 1, 1, 1] },
        { name: 'padding', type: b.TF_ATTR_STRING, value: 'VALID' },
        { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
        { name: 'dilations', type: b.TF_ATTR_INT, value: [1, 1, 1, 1] },
      ], [padded, consts.scatter]),
    );
    const image = keep(
      op('DepthToSpace', [
        { name: 'block_size', type: b.TF_ATTR_INT, value: plan.s },
        { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
      ], [phases]),
    );
    return backend.createOutputTensor(op('Slice', [int32('Index')], [image, consts.begin, consts.size]));
  } finally {
    for (const id of temps) b.deleteTensor(id);
  }
}

/**
 * Replaces the tensorflow backend's `Conv2DBackpropInput` with one that takes `phaseInputGradient` where it is faster
 * (few image channels) and TensorFlow's op everywhere else. The gradient of the kernel is tfjs's, unchanged.
 */
export function registerPhaseInputGradient(): void {
  const stock = tf.getKernel(tf.Conv2DBackpropInput, 'tensorflow')?.kernelFunc;
  if (!stock) return;
  tf.unregisterKernel(tf.Conv2DBackpropInput, 'tensorflow');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'tensorflow',
    kernelFunc: ((args: Parameters<tf.KernelFunc>[0]) => {
      const backend = args.backend as NativeBackend;
      const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const plan = planFor(backend.binding, dy, filter, args.attrs as unknown as tf.Conv2DBackpropInputAttrs);
      return plan ? phaseInputGradient(backend, dy, filter, plan) : stock(args);
    }) as tf.KernelFunc,
  });
}
