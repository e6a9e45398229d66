import * as tf from '@tensorflow/tfjs-core';
import { withRunner } from './kernel-runner.js';

type Typed = Float32Array | Int32Array | Uint8Array;

/**
 * Repeats `values` (row-major, `shape`) `reps[a]` times along each axis, innermost axis first, with block copies
 * (TypedArray.set), so the cost is one memory pass per tiled axis.
 */
export function tileValues(values: Typed, shape: readonly number[], reps: readonly number[]): { values: Typed; shape: number[] } {
  let cur = values;
  const curShape = [...shape];
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const rep = reps[axis];
    if (rep === 1) continue;
    let inner = 1;
    for (let i = axis; i < curShape.length; i++) inner *= curShape[i];
    let outer = 1;
    for (let i = 0; i < axis; i++) outer *= curShape[i];
    const next = new (cur.constructor as new (n: number) => Typed)(outer * inner * rep);
    for (let o = 0; o < outer; o++) {
      const block = cur.subarray(o * inner, (o + 1) * inner);
      for (let r = 0; r < rep; r++) next.set(block, (o * rep + r) * inner);
    }
    cur = next;
    curShape[axis] *= rep;
  }
  return { values: cur, shape: curShape };
}

/**
 * wasm's Tile computes a multi-index per output element: 240 ms to tile a [1,1,1,64] batch-norm scale to
 * [64,14,14,64] (FusedBatchNorm's gradient does exactly that). Block copies in JS take ~1 ms.
 */
export function tileKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc(args);
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    const backend = args.backend as tf.KernelBackend;
    const src = backend.readSync(x.dataId) as Typed;
    const tiled = tileValues(src, x.shape, reps);
    return { dataId: backend.write(tiled.values, tiled.shape, x.dtype), shape: tiled.shape, dtype: x.dtype };
  };
}

/**
 * tfjs clones every tensor it saves for the backward pass (Identity kernel). wasm's Identity copies the data; the cpu
 * backend shares it by reference count, which is sound because kernels never write into their inputs. Sharing on
 * wasm too removes ~200 copies per WGAN-GP step.
 */
export function identityKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return stock.kernelFunc(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * wasm's LeakyRelu takes ~9 ms on 800k values where Relu takes 0.6 ms; x · step(x, α) (Step, Multiply) gives the same
 * values (x·1 = x; x·α is the same product) in ~1.3 ms.
 */
export function leakyReluKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype !== 'float32') return stock.kernelFunc(args);
    const { alpha } = args.attrs as unknown as tf.LeakyReluAttrs;
    return withRunner(args.backend as tf.KernelBackend, stock.backendName, (r) =>
      r.run('Multiply', { a: x, b: r.run('Step', { x }, { alpha }) }),
    );
  };
}

/**
 * The gradient of every clone tfjs saves for the backward pass is a Cast to float32 of a float32 tensor, and wasm's
 * Cast copies even then. A same-dtype Cast shares the data like the Identity above (second-order gradients, as in
 * full unrolling, run hundreds of them per step); other casts go to the stock kernel.
 */
export function castKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    if (x.dtype !== dtype || dtype === 'string' || dtype === 'complex64') return stock.kernelFunc(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype };
  };
}
