import * as tf from '@tensorflow/tfjs-core';
import { withRunner } from './kernel-runner.js';

type Typed = Float32Array | Int32Array | Uint8Array;

/**
 * Writes `values` (row-major, `shape`) repeated `reps[a]` times along each axis into `out`, in place: the compact
 * values first, then, innermost axis first, each block moved to its final place (last block first, so nothing
 * unread is overwritten) and repeated by doubling: copyWithin of everything written so far, so a block is repeated in
 * log2(rep) calls (one call per copy made a [64,1] → [64,784] tile take 50k calls, ~1.5 ms). One memory pass per
 * tiled axis.
 */
export function tileInto(values: Typed, shape: readonly number[], reps: readonly number[], out: Typed): void {
  out.set(values, 0);
  const cur = [...shape];
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const rep = reps[axis];
    if (rep === 1) continue;
    let inner = 1;
    for (let i = axis; i < cur.length; i++) inner *= cur[i];
    let outer = 1;
    for (let i = 0; i < axis; i++) outer *= cur[i];
    for (let o = outer - 1; o >= 0; o--) {
      const to = o * inner * rep;
      if (to !== o * inner) out.copyWithin(to, o * inner, (o + 1) * inner);
      const end = to + rep * inner;
      for (let filled = to + inner; filled < end; filled += filled - to) {
        out.copyWithin(filled, to, to + Math.min(filled - to, end - filled));
      }
    }
    cur[axis] *= rep;
  }
}

/**
 * wasm's Tile computes a multi-index per output element: 240 ms to tile a [1,1,1,64] batch-norm scale to
 * [64,14,14,64] (FusedBatchNorm's gradient does exactly that). Block copies straight into the output's heap memory
 * take ~1 ms.
 */
export function tileKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock.kernelFunc(args);
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    const backend = args.backend as unknown as WasmHeapBackend;
    const shape = x.shape.map((d, i) => d * reps[i]);
    const out = backend.makeOutput(shape, x.dtype);
    // Views after the output's allocation: a heap growth replaces the buffer.
    tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
    return out;
  };
}

/** The wasm backend's view of a tensor's memory on its heap (no copy), as its own JavaScript kernels use. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Typed;
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
 * wasm's LeakyRelu takes ~9 ms on 800k values where Relu takes 0.6 ms. XNNPACK's PReLU with the slope α repeated for
 * every channel (the last axis) computes the same float32 product α·x for x < 0 and passes x through: bit-equal, in
 * ~0.2 ms (x · step(x, α), the previous form, took ~0.4).
 */
export function leakyReluKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype !== 'float32' || x.shape.length === 0) return stock.kernelFunc(args);
    const { alpha } = args.attrs as unknown as tf.LeakyReluAttrs;
    const channels = x.shape[x.shape.length - 1];
    return withRunner(args.backend as tf.KernelBackend, stock.backendName, (r) =>
      r.run('Prelu', { x, alpha: r.fromValues(new Float32Array(channels).fill(alpha), [channels]) }),
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

/** x as [outer, reduced, inner] when `axis` is one contiguous block of axes with kept axes after it; else null. */
export function blockReduction(shape: readonly number[], axis: number | number[]): { outer: number; reduced: number; inner: number } | null {
  const axes = [...tf.util.parseAxisParam(axis, [...shape])].sort((a, b) => a - b);
  if (axes.length === 0 || axes.some((a, i) => a !== axes[0] + i)) return null;
  const last = axes[axes.length - 1];
  const size = (from: number, to: number) => shape.slice(from, to).reduce((p, d) => p * d, 1);
  return { outer: size(0, axes[0]), reduced: size(axes[0], last + 1), inner: size(last + 1, shape.length) };
}

/** Largest reduced extent sent to pooling (a float32 count stays exact; XNNPACK's average scales by 1/count). */
const POOL_MAX_REDUCED = 1 << 24;

/**
 * Sum and Mean over a block of axes followed by kept axes (bias and batch-norm gradients, batch-norm moments:
 * [B, H, W, C] reduced to [C]). wasm moves the reduced axes last with a full transpose and then sums in a scalar loop
 * (~3 ms for 64×14×14×64). The same reduction is an average pooling of x seen as [outer, reduced, 1, inner] with a
 * [reduced, 1] window, which XNNPACK runs vectorized across the kept axis without a copy (~0.2 ms). Sum is the mean
 * times the count. The result differs from wasm's sequential float32 sum by rounding only (relative ~1e-7 to 1e-6,
 * as wasm's own differs from the exact sum).
 */
function blockReduceKernel(stock: tf.KernelConfig, mean: boolean): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const block = x.dtype === 'float32' ? blockReduction(x.shape, axis) : null;
    if (block == null || block.inner === 1 || block.reduced === 1 || block.reduced > POOL_MAX_REDUCED) return stock.kernelFunc(args);
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const outShape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return withRunner(args.backend as tf.KernelBackend, stock.backendName, (r) => {
      const { outer, reduced, inner } = block;
      const pooled = r.run(
        'AvgPool',
        { x: r.reshape(x, [outer, reduced, 1, inner]) },
        { filterSize: [reduced, 1], strides: [reduced, 1], pad: 'valid', dimRoundingMode: undefined } as unknown as tf.NamedAttrMap,
      );
      const y = mean ? pooled : r.run('Multiply', { a: pooled, b: r.fromValues(new Float32Array([reduced]), []) });
      return r.reshape(y, outShape);
    });
  };
}

export function sumKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return blockReduceKernel(stock, false);
}

export function meanKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return blockReduceKernel(stock, true);
}

/**
 * Batch normalization with per-channel statistics (the last axis): (x − mean) · factor + offset, factor =
 * scale / √(variance + ε) computed once per channel, as three broadcasting XNNPACK element-wise passes. wasm's own
 * kernel divides every element and steps four modular channel indices: 4.4 ms for 64×14×14×64 where the three
 * passes take 2.0 (CPU, 1 thread). Values differ from it by rounding only (factor is rounded once per channel).
 */
export function fusedBatchNormKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Partial<Record<string, tf.TensorInfo>>;
    const { varianceEpsilon } = args.attrs as unknown as tf.FusedBatchNormAttrs;
    const channels = x?.shape[x.shape.length - 1] ?? 0;
    const perChannel = (t: tf.TensorInfo | undefined) => t == null || tf.util.sizeFromShape(t.shape) === channels;
    if (x == null || mean == null || variance == null || x.dtype !== 'float32' || x.shape.length < 2) return stock.kernelFunc(args);
    if (![mean, variance, offset, scale].every(perChannel)) return stock.kernelFunc(args);
    return withRunner(args.backend as tf.KernelBackend, stock.backendName, (r) => {
      const v = r.values(variance);
      const s = scale ? r.values(scale) : null;
      const eps = Math.fround(varianceEpsilon);
      const factor = new Float32Array(channels);
      for (let c = 0; c < channels; c++) factor[c] = (s ? s[c] : 1) / Math.fround(Math.sqrt(Math.fround(v[c] + eps)));
      const centered = r.run('Sub', { a: x, b: r.reshape(mean, [channels]) });
      const scaled = r.run('Multiply', { a: centered, b: r.fromValues(factor, [channels]) });
      return offset ? r.run('Add', { a: scaled, b: r.reshape(offset, [channels]) }) : scaled;
    });
  };
}
