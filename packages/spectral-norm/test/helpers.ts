import type * as tf from '@tensorflow/tfjs-core';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';

/**
 * The [out, fanIn] weight matrix of torch's spectral_norm, built by index arithmetic straight from the tfjs kernel
 * layout (independent of the package's reshape code). Column order does not change singular values.
 */
export function weightMatrix(kernel: ArrayLike<number>, shape: number[], kind: 'Dense' | 'Conv2D' | 'Conv2DTranspose'): Matrix {
  if (kind === 'Conv2DTranspose') {
    // [kh, kw, out, in]
    const [kh, kw, out, inC] = shape;
    const m = new Matrix(out, kh * kw * inC);
    for (let a = 0; a < kh * kw; a++)
      for (let o = 0; o < out; o++)
        for (let c = 0; c < inC; c++) m.set(o, a * inC + c, kernel[(a * out + o) * inC + c]);
    return m;
  }
  // Dense [in, out], Conv2D [kh, kw, in, out]: output channels are the last axis.
  const out = shape[shape.length - 1];
  const fanIn = kernel.length / out;
  const m = new Matrix(out, fanIn);
  for (let j = 0; j < fanIn; j++) for (let o = 0; o < out; o++) m.set(o, j, kernel[j * out + o]);
  return m;
}

/** Applies a layer or model to concrete tensors (the typings also allow symbolic ones). */
export function run(layer: { apply(x: any, kwargs?: any): unknown }, x: tf.Tensor, training?: boolean): tf.Tensor {
  return layer.apply(x, training === undefined ? undefined : { training }) as tf.Tensor;
}

export function largestSingularValue(m: Matrix): number {
  return new SingularValueDecomposition(m, { computeLeftSingularVectors: false, computeRightSingularVectors: false })
    .diagonal.reduce((a, b) => Math.max(a, b), 0);
}

export function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}
