import * as tf from '@tensorflow/tfjs-core';

/**
 * What a resampling reads outside the image: `zero` (DiffAugment's padding) or `reflect`, mirrored about the edge
 * pixels without repeating them (…, 2, 1, 0, 1, 2, …; ADA's padding, so no border reveals the augmentation).
 */
export type Boundary = 'zero' | 'reflect';

/** Maps an output pixel index to the (possibly fractional) input coordinate it samples. */
export type SampleMap = (index: number) => number;

function reflectIndex(k: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((k % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * Writes the n×n linear-interpolation matrix of `map` into `out` at `offset` (row = output index, column = input
 * index): output i takes (1 − f) of input ⌊u⌋ and f of input ⌊u⌋ + 1, with u = map(i) and f = u − ⌊u⌋. Integer maps
 * give 0/1 matrices, so flips and integer translations are exact.
 */
export function writeInterpolation(out: Float32Array, offset: number, n: number, map: SampleMap, boundary: Boundary): void {
  for (let i = 0; i < n; i++) {
    const u = map(i);
    const k0 = Math.floor(u);
    const f = u - k0;
    const taps: [number, number][] = f === 0 ? [[k0, 1]] : [[k0, 1 - f], [k0 + 1, f]];
    for (const [k, weight] of taps) {
      if (boundary === 'zero' && (k < 0 || k >= n)) continue;
      const source = boundary === 'zero' ? k : reflectIndex(k, n);
      out[offset + i * n + source] += weight;
    }
  }
}

/** The [count, n, n] stack of interpolation matrices of one map per entry. */
export function interpolationStack(maps: readonly SampleMap[], n: number, boundary: Boundary): tf.Tensor3D {
  const data = new Float32Array(maps.length * n * n);
  maps.forEach((map, b) => writeInterpolation(data, b * n * n, n, map, boundary));
  return tf.tensor3d(data, [maps.length, n, n]);
}

/**
 * Resamples rows and columns of each image separately: y[b] = R[b] · x[b] · C[b]ᵀ per channel, where R and C are the
 * interpolation matrices of `rowMaps[b]` and `colMaps[b]`. Only matMul, reshape and transpose: differentiable with
 * respect to x on every backend (no gather, whose gradient wasm lacks).
 */
export function resampleSeparable(
  x: tf.Tensor4D,
  rowMaps: readonly SampleMap[],
  colMaps: readonly SampleMap[],
  boundary: Boundary,
): tf.Tensor4D {
  const [batch, height, width, channels] = x.shape;
  return tf.tidy(() => {
    const rows = interpolationStack(rowMaps, height, boundary);
    const cols = interpolationStack(colMaps, width, boundary);
    const alongRows = tf.matMul(rows, tf.reshape(x, [batch, height, width * channels]));
    const swapped = tf.reshape(tf.transpose(tf.reshape(alongRows, [batch, height, width, channels]), [0, 2, 1, 3]), [batch, width, height * channels]);
    const alongCols = tf.matMul(cols, swapped);
    return tf.transpose(tf.reshape(alongCols, [batch, width, height, channels]), [0, 2, 1, 3]) as tf.Tensor4D;
  });
}

/**
 * A shear along the columns: row i of image b is resampled with the map j ↦ j + shift[b]·(i − cy), cy the centre row
 * (a batched matMul over B·H rows). `transposed` shears along the rows instead.
 */
export function shear(x: tf.Tensor4D, amounts: readonly number[], boundary: Boundary, transposed = false): tf.Tensor4D {
  return tf.tidy(() => {
    const input = transposed ? (tf.transpose(x, [0, 2, 1, 3]) as tf.Tensor4D) : x;
    const [batch, height, width, channels] = input.shape;
    const cy = (height - 1) / 2;
    const maps: SampleMap[] = [];
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < height; i++) maps.push((j) => j + amounts[b] * (i - cy));
    }
    const matrices = interpolationStack(maps, width, boundary);
    const out = tf.reshape(tf.matMul(matrices, tf.reshape(input, [batch * height, width, channels])), [batch, height, width, channels]);
    return (transposed ? tf.transpose(out, [0, 2, 1, 3]) : out) as tf.Tensor4D;
  });
}

/**
 * Rotates each image about its centre by sampling angle φ[b] ∈ [−π/4, π/4] (output p samples input R(φ)·p) with
 * three shears (Paeth 1986): R(φ) = Sx(−tan(φ/2))·Sy(sin φ)·Sx(−tan(φ/2)), each a 1-D linear interpolation.
 */
export function rotateSmall(x: tf.Tensor4D, angles: readonly number[], boundary: Boundary): tf.Tensor4D {
  if (x.shape[1] !== x.shape[2]) throw new Error(`rotation needs square images, got ${x.shape[1]}×${x.shape[2]}`);
  const a = angles.map((phi) => -Math.tan(phi / 2));
  const b = angles.map((phi) => Math.sin(phi));
  return tf.tidy(() => shear(shear(shear(x, a, boundary), b, boundary, true), a, boundary));
}

/** Per image, the transpose of its spatial axes where `mask[b]` is 1 (a differentiable blend; square images). */
export function transposeWhere(x: tf.Tensor4D, mask: readonly number[]): tf.Tensor4D {
  if (!mask.some((m) => m)) return x;
  if (x.shape[1] !== x.shape[2]) throw new Error(`90° rotations need square images, got ${x.shape[1]}×${x.shape[2]}`);
  return tf.tidy(() => {
    const m = tf.tensor4d([...mask], [mask.length, 1, 1, 1]);
    return tf.add(tf.mul(m, tf.transpose(x, [0, 2, 1, 3])), tf.mul(tf.sub(1, m), x)) as tf.Tensor4D;
  });
}
