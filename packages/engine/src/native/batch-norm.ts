import * as tf from '@tensorflow/tfjs-core';
import { tapeRecording } from '../leaky-relu-gradient.js';
import type { NativeAttr, NativeBackend } from './binding.js';

/**
 * tfjs-layers' batch normalization in training mode as TensorFlow's fused ops on the tensorflow backend: the forward
 * pass is one `FusedBatchNormV3` (batch statistics, normalization, scale and offset in two passes over x) instead of
 * tfjs's moments + `FusedBatchNorm` (16 kernels), and its gradient one `FusedBatchNormGradV3` instead of ~47 kernels
 * of tfjs's composite gradient (moments' and FusedBatchNorm's), each a pass over the activation.
 */

interface LayerVariableLike {
  read(): tf.Variable;
  write(value: tf.Tensor): void;
}

/** The fields of tfjs-layers' BatchNormalization that its `call` reads (tfjs-layers 4.22, `normalization.ts`). */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: LayerVariableLike;
  beta?: LayerVariableLike;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
}

type LayerCall = (this: BatchNormLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor | tf.Tensor[];

/** One empty float32 tensor in the addon: the fused ops' unused mean/variance inputs and reserve space. */
let emptyId: number | undefined;

function attrs(b: NativeBackend, epsilon: number, forward: boolean): NativeAttr[] {
  const B = b.binding;
  return [
    { name: 'T', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
    { name: 'U', type: B.TF_ATTR_TYPE, value: B.TF_FLOAT },
    { name: 'epsilon', type: B.TF_ATTR_FLOAT, value: epsilon },
    ...(forward ? [{ name: 'exponential_avg_factor', type: B.TF_ATTR_FLOAT, value: 1 }] : []),
    { name: 'data_format', type: B.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: B.TF_ATTR_BOOL, value: true },
  ];
}

function empty(b: NativeBackend): number {
  emptyId ??= b.binding.createTensor([0], b.binding.TF_FLOAT, new Float32Array(0));
  return emptyId;
}

/**
 * Runs a TensorFlow op on tfjs tensors and returns the outputs listed in `keep` as tfjs tensors (created in the
 * current scope); the other outputs are released in the addon.
 */
function run(b: NativeBackend, op: string, opAttrs: NativeAttr[], inputs: tf.Tensor[], extraIds: number[], outputs: number, keep: number[]): tf.Tensor[] {
  const ids = [...b.getInputTensorIds(inputs), ...extraIds];
  const out = b.binding.executeOp(op, opAttrs, ids, outputs);
  out.forEach((meta, i) => {
    if (!keep.includes(i)) b.binding.deleteTensor(meta.id);
  });
  return keep.map((i) => b.createOutputTensor(out[i]));
}

const AXES = [0, 1, 2];

/**
 * y = γ·(x − μ)/√(σ² + ε) + β over the batch and spatial axes of an NHWC x, with μ, σ² (biased, as tfjs's moments)
 * returned as constants for the moving averages. Differentiable in x, γ, β: a gradient nothing differentiates again
 * is TensorFlow's `FusedBatchNormGradV3`; one a tape records (a gradient penalty through a critic with batchnorm) is
 * the same formula in tfjs ops with the moments recomputed from x on the tape, so a nested gradient sees μ(x), σ²(x).
 */
export function fusedBatchNormTraining(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const b = tf.backend() as NativeBackend;
  let mean!: tf.Tensor1D;
  let variance!: tf.Tensor1D;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, scaleIn, offsetIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    // Outputs: y, batch mean, Bessel-corrected batch variance, reserve 1 (mean), reserve 2 (biased variance), reserve 3.
    const [y, m, v] = run(b, 'FusedBatchNormV3', attrs(b, epsilon, true), [xIn, scaleIn, offsetIn], [empty(b), empty(b)], 6, [0, 1, 4]);
    mean = tf.keep(m) as tf.Tensor1D;
    variance = tf.keep(v) as tf.Tensor1D;
    save([xIn, scaleIn, m, v]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, scale, savedMean, savedVariance] = saved;
        const dyT = dy as tf.Tensor;
        if (!tapeRecording()) {
          return run(b, 'FusedBatchNormGradV3', attrs(b, epsilon, false), [dyT, xs, scale, savedMean, savedVariance], [empty(b)], 5, [0, 1, 2]);
        }
        return tf.tidy(() => {
          const n = xs.size / xs.shape[3]!;
          const moments = tf.moments(xs, AXES);
          const rstd = tf.rsqrt(tf.add(moments.variance, epsilon));
          const xhat = tf.mul(tf.sub(xs, moments.mean), rstd);
          const dBeta = tf.sum(dyT, AXES);
          const dGamma = tf.sum(tf.mul(dyT, xhat), AXES);
          // dx = γ·rstd·(dy − Σdy/n − x̂·Σ(dy·x̂)/n)
          const centered = tf.sub(tf.sub(dyT, tf.div(dBeta, n)), tf.mul(xhat, tf.div(dGamma, n)));
          const dx = tf.mul(centered, tf.mul(scale, rstd));
          return [dx, dGamma, dBeta];
        });
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  return { y, mean, variance };
}

let installed = false;

/**
 * Routes tfjs-layers' BatchNormalization in training mode through `fusedBatchNormTraining` while the tensorflow
 * backend is active, for float32 inputs of rank ≥ 2 normalized over the last axis (NHWC images; a dense layer's
 * [batch, units] as [batch, 1, 1, units]) with both γ and β; everything else (other backends, inference, other axes)
 * runs tfjs-layers' own code. The moving averages are updated with the same ops
 * tfjs-layers uses. Idempotent.
 */
export function installNativeBatchNorm(): void {
  if (installed) return;
  const entry = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization;
  if (entry == null) return;
  installed = true;
  const proto = (entry[0] as unknown as { prototype: { call: LayerCall } }).prototype;
  const stockCall = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const input = Array.isArray(inputs) && inputs.length === 1 ? inputs[0] : inputs;
    const rank = input instanceof tf.Tensor ? input.rank : 0;
    const applies =
      kwargs?.training === true &&
      tf.getBackend() === 'tensorflow' &&
      input instanceof tf.Tensor &&
      rank >= 2 &&
      input.size > 0 &&
      input.dtype === 'float32' &&
      (this.axis === -1 || this.axis === rank - 1) &&
      this.gamma != null &&
      this.beta != null;
    if (!applies) return stockCall.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const x = input as tf.Tensor;
      // Normalizing over every axis but the last is the same over [rows, 1, 1, channels]: other ranks are viewed so.
      const channels = x.shape[rank - 1];
      const x4 = rank === 4 ? (x as tf.Tensor4D) : tf.reshape(x, [x.size / channels, 1, 1, channels]) as tf.Tensor4D;
      const { y: y4, mean, variance } = fusedBatchNormTraining(x4, this.gamma!.read() as tf.Tensor1D, this.beta!.read() as tf.Tensor1D, this.epsilon);
      const y = rank === 4 ? y4 : tf.reshape(y4, x.shape);
      // tfjs-layers' moving-average update, op for op: v ← v − (v − value)·(1 − momentum).
      for (const [variable, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const orig = variable.read();
          variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
        });
      }
      tf.dispose([mean, variance]);
      return y;
    });
  };
}
