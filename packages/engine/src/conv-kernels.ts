import * as tf from '@tensorflow/tfjs-core';
import { heapBackend, type KernelRunner } from './kernel-runner.js';

type Info = tf.TensorInfo;
type Shape4 = [number, number, number, number];

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

function nhwcShape(shape: number[], dataFormat: string): Shape4 {
  const s = shape as Shape4;
  return dataFormat === 'NCHW' ? [s[0], s[2], s[3], s[1]] : s;
}

/**
 * How a composite conv gradient is computed. `conv`: as forward convolutions on the backend's fast conv (the general
 * case). `columns`: as one matrix product plus a JS gather/scatter of image patches (im2col / col2im), for thin layers
 * (few input channels, e.g. an RGB or greyscale image layer) whose forward-conv form leaves XNNPACK with one to a few
 * output channels and runs at a fifth of its speed. `auto` picks by size.
 */
export type ConvGradMethod = 'auto' | 'conv' | 'columns';

/** Patch length (KH·KW·Ci) up to which `auto` uses the columns method; JS touches B·OH·OW·patch values there. */
const COLUMNS_MAX_PATCH = 32;
const COLUMNS_MAX_VALUES = 1 << 22;

/** The sizes of a 2-D convolution, NHWC, filter [KH, KW, Ci, Co]: its input, output, strides, dilations and padding. */
export interface Geometry {
  B: number;
  H: number;
  W: number;
  Ci: number;
  KH: number;
  KW: number;
  Co: number;
  OH: number;
  OW: number;
  sh: number;
  sw: number;
  /** Dilation (1 for the conv gradients: tfjs's do not take one). */
  dh: number;
  dw: number;
  top: number;
  left: number;
}

export function convGeometry(
  inShape: Shape4,
  filterShape: Shape4,
  strides: [number, number] | number,
  pad: tf.Conv2DBackpropFilterAttrs['pad'],
  dimRoundingMode: tf.Conv2DBackpropFilterAttrs['dimRoundingMode'],
  dilations: [number, number] | number = 1,
): Geometry {
  const info = tf.backend_util.computeConv2DInfo(inShape, filterShape, strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const [B, H, W, Ci] = inShape;
  const [KH, KW, , Co] = filterShape;
  return {
    B,
    H,
    W,
    Ci,
    KH,
    KW,
    Co,
    OH: info.outHeight,
    OW: info.outWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

function useColumns(g: Geometry, method: ConvGradMethod): boolean {
  if (method !== 'auto') return method === 'columns';
  const patch = g.KH * g.KW * g.Ci;
  return patch <= COLUMNS_MAX_PATCH && g.B * g.OH * g.OW * patch <= COLUMNS_MAX_VALUES;
}

/**
 * Moves image patches between the [B, H, W, Ci] image and a [B·OH·OW, KH·KW·Ci] column matrix: copies them into the
 * columns (im2col) or adds the columns back onto the image (col2im). Taps outside the image are skipped (zero padding).
 * For each image row and tap, the output columns that land inside the image form one run, walked with fixed strides
 * (no per-element bounds test or index products: this is JavaScript, on every step for an image layer).
 */
function movePatches(g: Geometry, cols: Float32Array, image: Float32Array, direction: 'im2col' | 'col2im'): void {
  const { B, H, W, Ci, KH, KW, OH, OW, sh, sw, top, left } = g;
  const patch = KH * KW * Ci;
  const gather = direction === 'im2col';
  const imgStride = sw * Ci;
  for (let kw = 0; kw < KW; kw++) {
    // Output columns whose tap kw lies inside the image: 0 <= ow*sw + kw - left < W.
    const owFirst = Math.max(0, Math.ceil((left - kw) / sw));
    const run = Math.min(OW, Math.floor((W - 1 + left - kw) / sw) + 1) - owFirst;
    if (run <= 0) continue;
    for (let b = 0; b < B; b++)
      for (let oh = 0; oh < OH; oh++)
        for (let kh = 0; kh < KH; kh++) {
          const i = oh * sh + kh - top;
          if (i < 0 || i >= H) continue;
          const col0 = ((b * OH + oh) * OW + owFirst) * patch + (kh * KW + kw) * Ci;
          const img0 = ((b * H + i) * W + owFirst * sw + kw - left) * Ci;
          // One channel (a greyscale image layer, the common case): no channel loop, ~40% faster.
          if (Ci === 1 && gather) for (let k = 0; k < run; k++) cols[col0 + k * patch] = image[img0 + k * imgStride];
          else if (Ci === 1) for (let k = 0; k < run; k++) image[img0 + k * imgStride] += cols[col0 + k * patch];
          else if (gather) {
            for (let k = 0; k < run; k++) {
              const c0 = col0 + k * patch;
              const i0 = img0 + k * imgStride;
              for (let c = 0; c < Ci; c++) cols[c0 + c] = image[i0 + c];
            }
          } else {
            for (let k = 0; k < run; k++) {
              const c0 = col0 + k * patch;
              const i0 = img0 + k * imgStride;
              for (let c = 0; c < Ci; c++) image[i0 + c] += cols[c0 + c];
            }
          }
        }
  }
}

/** dW = im2col(x)ᵀ · dy as one matrix product; the patches are gathered in JS. */
function filterGradColumns(r: KernelRunner, x: Info, dy: Info, g: Geometry): Info {
  const patch = g.KH * g.KW * g.Ci;
  const rows = g.B * g.OH * g.OW;
  const colsInfo = r.produce([1, rows, patch], (cols, read) => movePatches(g, cols, read(x), 'im2col'));
  const dy3 = r.reshape(dy, [1, rows, g.Co]);
  const dw = r.run('BatchMatMul', { a: colsInfo, b: dy3 }, { transposeA: true, transposeB: false });
  return r.reshape(dw, [g.KH, g.KW, g.Ci, g.Co]);
}

/** dx = col2im(dy · Wᵀ): one matrix product, then the patches are scattered back (summed) in JS. */
function inputGradColumns(r: KernelRunner, dy: Info, filter: Info, g: Geometry): Info {
  const patch = g.KH * g.KW * g.Ci;
  const rows = g.B * g.OH * g.OW;
  const dy3 = r.reshape(dy, [1, rows, g.Co]);
  const w3 = r.reshape(filter, [1, patch, g.Co]);
  const colsInfo = r.run('BatchMatMul', { a: dy3, b: w3 }, { transposeA: false, transposeB: true });
  return r.produce([g.B, g.H, g.W, g.Ci], (dx, read) => movePatches(g, read(colsInfo), dx, 'col2im'));
}

/**
 * Filter gradient of a 2-D convolution as one forward convolution, so it runs on the backend's fast (XNNPACK) conv:
 *
 *   dW[kh, kw, ci, co] = sum over b, oh, ow of xPadded[b, oh*s + kh, ow*s + kw, ci] * dy[b, oh, ow, co]
 *
 * is a stride-1 convolution whose "batch" is ci, whose "input channels" are the batch b, and whose filter is dy laid
 * out as [oh, ow, b, co] with dilation s. The padded input may be longer than the forward pass used; the extra output
 * rows are cut off. Thin layers use the columns method instead.
 */
export function conv2dBackpropFilter(
  r: KernelRunner,
  x: Info,
  dy: Info,
  attrs: tf.Conv2DBackpropFilterAttrs,
  method: ConvGradMethod = 'auto',
): Info {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const xs = dataFormat === 'NCHW' ? r.transpose(x, NCHW_TO_NHWC) : x;
  const dys = dataFormat === 'NCHW' ? r.transpose(dy, NCHW_TO_NHWC) : dy;
  const g = convGeometry(xs.shape as Shape4, filterShape, strides, pad, dimRoundingMode);
  if (useColumns(g, method)) return filterGradColumns(r, xs, dys, g);
  const { H, W, Ci, KH, KW, Co, OH, OW, sh, sw, top, left } = g;
  // Padded extent the forward pass read; pad the end so that the dilated conv yields at least KH x KW outputs.
  const bottom = Math.max(0, (OH - 1) * sh + KH - top - H);
  const right = Math.max(0, (OW - 1) * sw + KW - left - W);
  // [B, H, W, Ci] → [Ci, H, W, B] as a 2-D transpose, then a move of whole runs of B values: wasm's rank-4 transpose
  // moves single values here (~2 ms for 64×14×14×64), its 2-D one and the run move take ~1 ms together.
  const pixelsMajor = r.reshape(r.transpose(r.reshape(xs, [g.B, H * W * Ci]), [1, 0]), [H * W, Ci, g.B]);
  const xT = r.reshape(r.transpose(pixelsMajor, [1, 0, 2]), [Ci, H, W, g.B]);
  const dyT = r.transpose(dys, [1, 2, 0, 3]); // [OH, OW, B, Co]
  const out = r.conv2d(xT, dyT, [top, bottom, left, right], [sh, sw]); // [Ci, >=KH, >=KW, Co]
  const cropped = r.slice(out, [0, 0, 0, 0], [Ci, KH, KW, Co]);
  return r.transpose(cropped, [1, 2, 0, 3]);
}

/** Geometry of one output phase (rows i = s*q + phase) of a transposed convolution along one axis. */
interface Phase {
  /** Filter taps that reach this phase; 0 means the phase receives nothing. */
  taps: number;
  /** First tap in the spatially reversed filter; taps follow at stride s. */
  start: number;
  padBefore: number;
  padAfter: number;
  cropBefore: number;
  cropAfter: number;
}

/**
 * dx[s*q + phase] = sum over m of dy[q + d - m] * w[c + s*m], with c = (phase + pad) mod s and
 * d = floor((phase + pad) / s). With the taps reversed this is a stride-1 correlation of dy; negative padding becomes a
 * crop of dy. `outCount` is the number of q computed (the same for every phase so that phases interleave).
 */
function phaseGeometry(phase: number, stride: number, padBefore: number, kernel: number, inCount: number, outCount: number): Phase {
  const c = (phase + padBefore) % stride;
  const d = Math.floor((phase + padBefore) / stride);
  const taps = c < kernel ? Math.ceil((kernel - c) / stride) : 0;
  const start = kernel - 1 - c - stride * (taps - 1);
  const before = taps - 1 - d;
  const after = outCount + taps - 1 - before - inCount;
  return {
    taps,
    start,
    padBefore: Math.max(0, before),
    padAfter: Math.max(0, after),
    cropBefore: Math.max(0, -before),
    cropAfter: Math.max(0, -after),
  };
}

/**
 * sub[jh, jw, :, :] = wT[KH-1-(start_h + s_h*jh), KW-1-(start_w + s_w*jw), :, :]: the reversed taps that reach a phase,
 * copied as whole [Co, Ci] blocks from the filter with its channels already swapped (wT, [KH, KW, Co, Ci]).
 */
function phaseTaps(wT: Float32Array, [KH, KW, Ci, Co]: Shape4, ph: Phase, pw: Phase, sh: number, sw: number, out: Float32Array): void {
  const block = Co * Ci;
  let o = 0;
  for (let jh = 0; jh < ph.taps; jh++) {
    const kh = KH - 1 - (ph.start + sh * jh);
    for (let jw = 0; jw < pw.taps; jw++, o += block) {
      const from = (kh * KW + KW - 1 - (pw.start + sw * jw)) * block;
      out.set(wT.subarray(from, from + block), o);
    }
  }
}

/** Below this many channels a pixel is copied value by value; above, with one copyWithin per pixel. */
const COPY_WITHIN_MIN_CHANNELS = 16;

/**
 * dx[b, s_h·q_h + r_h, s_w·q_w + r_w, :] = phases[r_h][r_w][b, q_h, q_w, :], cropped to [B, H, W, Ci]. On wasm the
 * pixels are copied once, inside the heap, straight into dx; elsewhere (and as the general form) with concatenations
 * and reshapes, which copy everything twice (wasm's Concat is JavaScript too).
 */
function interleavePhases(r: KernelRunner, phases: Info[][], g: Geometry, QH: number, QW: number): Info {
  const { B, H, W, Ci, sh, sw } = g;
  const heap = heapBackend(r.backend);
  if (heap == null) {
    const rows = phases.map((cols) => {
      const row = r.concat(cols.map((z) => r.reshape(z, [B, QH, QW, 1, Ci])), 3);
      return r.reshape(row, [B, QH, 1, QW * sw, Ci]);
    });
    const interleaved = r.reshape(r.concat(rows, 2), [B, QH * sh, QW * sw, Ci]);
    return r.slice(interleaved, [0, 0, 0, 0], [B, H, W, Ci]);
  }
  const dx = r.empty([B, H, W, Ci]);
  // Views taken after the allocation (a heap growth replaces the buffer); one view of the whole heap for copyWithin.
  const dxView = heap.typedArrayFromHeap(dx);
  const all = new Float32Array(dxView.buffer);
  const dxBase = dxView.byteOffset >> 2;
  for (let rh = 0; rh < sh; rh++)
    for (let rw = 0; rw < sw; rw++) {
      const srcBase = heap.typedArrayFromHeap(phases[rh][rw]).byteOffset >> 2;
      const qwEnd = Math.min(QW, Math.ceil((W - rw) / sw));
      for (let b = 0; b < B; b++)
        for (let qh = 0; qh < QH; qh++) {
          const h = qh * sh + rh;
          if (h >= H) break;
          let src = srcBase + ((b * QH + qh) * QW) * Ci;
          let dst = dxBase + ((b * H + h) * W + rw) * Ci;
          const dstStep = sw * Ci;
          if (Ci >= COPY_WITHIN_MIN_CHANNELS) {
            for (let qw = 0; qw < qwEnd; qw++, src += Ci, dst += dstStep) all.copyWithin(dst, src, src + Ci);
          } else {
            for (let qw = 0; qw < qwEnd; qw++, src += Ci, dst += dstStep) for (let c = 0; c < Ci; c++) all[dst + c] = all[src + c];
          }
        }
    }
  return dx;
}

/**
 * Input gradient of a 2-D convolution (= transposed convolution) by sub-pixel decomposition: output pixels with the
 * same position modulo the stride form a phase, and each phase is a stride-1 forward convolution of dy with the taps
 * of the filter that reach it. The s_h*s_w phase results are interleaved (interleavePhases). No multiply
 * is spent on inserted zeros, so the work equals the forward convolution's.
 */
export function conv2dBackpropInput(
  r: KernelRunner,
  dy: Info,
  filter: Info,
  attrs: tf.Conv2DBackpropInputAttrs,
  method: ConvGradMethod = 'auto',
): Info {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  const dys = dataFormat === 'NCHW' ? r.transpose(dy, NCHW_TO_NHWC) : dy;
  const g = convGeometry(nhwcShape(inputShape, dataFormat), filter.shape as Shape4, strides, pad, dimRoundingMode);
  if (useColumns(g, method)) {
    const dxColumns = inputGradColumns(r, dys, filter, g);
    return dataFormat === 'NCHW' ? r.transpose(dxColumns, NHWC_TO_NCHW) : dxColumns;
  }
  const { B, H, W, Ci, KH, KW, Co, OH, OW, sh, sw } = g;
  const QH = Math.ceil(H / sh);
  const QW = Math.ceil(W / sw);
  // Filter taps: channels swapped once for all phases ([KH·KW, Ci, Co] → [KH·KW, Co, Ci], one backend transpose), then
  // each phase copies its taps as whole blocks in JS (wasm's Reverse/StridedSlice cost more than the conv; a
  // value-by-value reorder in JS cost more than the transpose).
  const swapped = r.transpose(r.reshape(filter, [KH * KW, Ci, Co]), [0, 2, 1]);
  const phaseOutput = (ph: Phase, pw: Phase): Info => {
    const rows = OH - ph.cropBefore - ph.cropAfter;
    const cols = OW - pw.cropBefore - pw.cropAfter;
    if (ph.taps === 0 || pw.taps === 0 || rows <= 0 || cols <= 0) return r.zeros([B, QH, QW, Ci]);
    const subFilter = r.produce([ph.taps, pw.taps, Co, Ci], (out, read) =>
      phaseTaps(read(swapped), [KH, KW, Ci, Co], ph, pw, sh, sw, out),
    );
    const src = r.slice(dys, [0, ph.cropBefore, pw.cropBefore, 0], [B, rows, cols, Co]);
    return r.conv2d(src, subFilter, [ph.padBefore, ph.padAfter, pw.padBefore, pw.padAfter]); // [B, QH, QW, Ci]
  };

  const phases: Info[][] = [];
  for (let rh = 0; rh < sh; rh++) {
    const ph = phaseGeometry(rh, sh, g.top, KH, OH, QH);
    phases.push([...Array(sw).keys()].map((rw) => phaseOutput(ph, phaseGeometry(rw, sw, g.left, KW, OW, QW))));
  }
  const dx = sh * sw === 1 ? r.slice(phases[0][0], [0, 0, 0, 0], [B, H, W, Ci]) : interleavePhases(r, phases, g, QH, QW);
  return dataFormat === 'NCHW' ? r.transpose(dx, NHWC_TO_NCHW) : dx;
}
