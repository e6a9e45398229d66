import * as tf from '@tensorflow/tfjs-core';
import { withRunner, type KernelRunner } from './kernel-runner.js';

type Info = tf.TensorInfo;

/**
 * The wasm backend sends a matrix product to XNNPACK only when neither operand is transposed and both have batch 1;
 * everything else goes to a scalar triple loop (~1 GFLOP/s, e.g. 1.5 s for the dense-layer weight gradient
 * [1024,3136]^T x [3136,128]). Transposing explicitly (a memory pass) and splitting batches keeps products on XNNPACK.
 * Products smaller than this many multiply-adds stay on the stock kernel, where the extra passes would cost more.
 */
const MIN_MACS_FOR_REWRITE = 1 << 16;

/**
 * wasm caches one XNNPACK fully-connected operator per weight buffer (the B operand), keyed by the buffer's id but not
 * its shape. A buffer seen again under another shape (a reshape shares the buffer) would reuse an operator built for
 * other sizes and read or write out of bounds; such a B is copied to a fresh buffer first.
 */
const xnnWeightShapes = new WeakMap<object, string>();

function xnnSafeWeights(r: KernelRunner, b: Info): Info {
  const key = b.shape.slice(-2).join('x');
  const seen = xnnWeightShapes.get(b.dataId);
  if (seen === undefined) {
    xnnWeightShapes.set(b.dataId, key);
    return b;
  }
  if (seen === key) return b;
  return r.fromValues(r.values(b).slice(), b.shape);
}

/** True when the stock kernel will use XNNPACK (and its operator cache) for these operands. */
function takesXnnPath(a: Info, b: Info, transposeA: boolean, transposeB: boolean): boolean {
  const batch = (x: Info) => x.shape.slice(0, -2).reduce((p, d) => p * d, 1);
  return !transposeA && !transposeB && batch(a) === 1 && batch(b) === 1;
}

function runStock(r: KernelRunner, stock: tf.KernelFunc, inputs: Record<string, Info>, attrs: tf.NamedAttrMap): Info {
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const b = takesXnnPath(inputs.a!, inputs.b!, transposeA, transposeB) ? xnnSafeWeights(r, inputs.b!) : inputs.b!;
  return r.runFunc(stock, { ...inputs, b }, attrs);
}

/**
 * XNNPACK's fully-connected operator packs its B operand (the "weights"; wasm has it read B transposed) when it first
 * sees the buffer: ~15 ns per value here, where a transpose pass costs ~1.5. Weights are packed once and the operator
 * is cached per buffer; a gradient operand is new on every call. So for one product, count the values moved by the
 * plain form (transposes, then pack B unless cached) and by the swapped form Cᵀ = op(B)ᵀ·op(A)ᵀ (pack op(A)ᵀ
 * instead, then transpose the result): a weight gradient xᵀ·dy of a layer with many outputs packs the large dy in the
 * first form and only x in the second (dense 100→6272: 12 → 5 ms; the 4×4×1×64 image layer's filter gradient as
 * columnsᵀ·dy: 13 → 4 ms; CPU, 1 thread).
 */
const PACK_COST_PER_VALUE = 8;

function packedBefore(x: Info, rows: number, cols: number): boolean {
  return xnnWeightShapes.get(x.dataId) === `${rows}x${cols}`;
}

function swappedIsCheaper(a: Info, b: Info, transposeA: boolean, transposeB: boolean, M: number, K: number, N: number): boolean {
  const packB = transposeB || !packedBefore(b, K, N) ? PACK_COST_PER_VALUE * K * N : 0;
  const plain = (transposeA ? M * K : 0) + (transposeB ? K * N : 0) + packB;
  const packA = !transposeA || !packedBefore(a, K, M) ? PACK_COST_PER_VALUE * K * M : 0;
  const swapped = (transposeB ? 0 : K * N) + (transposeA ? 0 : M * K) + packA + M * N;
  return swapped < plain;
}

function swapLastTwo(r: KernelRunner, x: Info): Info {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return r.transpose(x, perm);
}

function product(dims: number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

function fastBatchMatMul(r: KernelRunner, stock: tf.KernelFunc, a: Info, b: Info, transposeA: boolean, transposeB: boolean): Info {
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  const M = transposeA ? a.shape[rankA - 1] : a.shape[rankA - 2];
  const K = transposeA ? a.shape[rankA - 2] : a.shape[rankA - 1];
  const N = transposeB ? b.shape[rankB - 2] : b.shape[rankB - 1];
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = product(outerA);
  const batchB = product(outerB);
  const batch = Math.max(batchA, batchB);
  const simpleBroadcast = batchA === batchB || batchA === 1 || batchB === 1;
  // Matrix-vector products are memory-bound: the stock loop is as fast as a transpose pass.
  if (M * N * K < MIN_MACS_FOR_REWRITE || N === 1 || M === 1 || !simpleBroadcast) {
    return runStock(r, stock, { a, b }, { transposeA, transposeB });
  }
  const plain = { transposeA: false, transposeB: false };
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB).concat([M, N]);
  if (batch === 1 && swappedIsCheaper(a, b, transposeA, transposeB, M, K, N)) {
    // Cᵀ = op(B)ᵀ·op(A)ᵀ: op(A)ᵀ becomes the packed operand (an `a` stored transposed already is op(A)ᵀ).
    const bt = transposeB ? b : swapLastTwo(r, b);
    const at = transposeA ? a : swapLastTwo(r, a);
    const ct = runStock(r, stock, { a: r.reshape(bt, [1, N, K]), b: r.reshape(at, [1, K, M]) }, plain);
    return r.reshape(swapLastTwo(r, ct), outShape);
  }
  const a2 = transposeA ? swapLastTwo(r, a) : a;
  const b2 = transposeB ? swapLastTwo(r, b) : b;
  if (batch === 1) return runStock(r, stock, { a: a2, b: b2 }, plain);
  const a3 = r.reshape(a2, [batchA, M, K]);
  const b3 = r.reshape(b2, [batchB, K, N]);
  const parts: Info[] = [];
  for (let i = 0; i < batch; i++) {
    const ai = batchA === 1 ? a3 : r.slice(a3, [i, 0, 0], [1, M, K]);
    const bi = batchB === 1 ? b3 : r.slice(b3, [i, 0, 0], [1, K, N]);
    parts.push(runStock(r, stock, { a: ai, b: bi }, plain));
  }
  return r.reshape(r.concat(parts, 0), outShape);
}

export function batchMatMulKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    return withRunner(backend as tf.KernelBackend, stock.backendName, (r) =>
      fastBatchMatMul(r, stock.kernelFunc, inputs.a!, inputs.b!, transposeA, transposeB),
    );
  };
}

/** _FusedMatMul (dense layers) with transposed operands: transpose first, then the XNNPACK path with bias+activation. */
export function fusedMatMulKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const [a0, b0] = [inputs.a!, inputs.b!];
    const batched = a0.shape.length > 2 && (a0.shape[0] !== 1 || b0.shape[0] !== 1);
    if (batched) return stock.kernelFunc({ inputs, backend, attrs });
    return withRunner(backend as tf.KernelBackend, stock.backendName, (r) => {
      const a = transposeA ? swapLastTwo(r, a0) : a0;
      const b = transposeB ? swapLastTwo(r, b0) : b0;
      return runStock(r, stock.kernelFunc, { ...inputs, a, b }, { ...attrs, transposeA: false, transposeB: false });
    });
  };
}
