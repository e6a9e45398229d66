/**
 * Float64 direct-loop references for 2-D convolutions (NHWC), written from the definitions, independent of tfjs.
 * Padding follows TensorFlow: 'valid' none; 'same' out = ceil(in / stride) with the odd pixel of padding at the end;
 * explicit [[0,0],[top,bottom],[left,right],[0,0]].
 */

export type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

export interface ConvGeometry {
  B: number;
  H: number;
  W: number;
  Ci: number;
  KH: number;
  KW: number;
  Co: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
  OH: number;
  OW: number;
  /** Dilation (1 when absent). */
  dh?: number;
  dw?: number;
}

function axis(size: number, k: number, s: number, pad: 'same' | 'valid' | [number, number]): { before: number; out: number } {
  if (pad === 'valid') return { before: 0, out: Math.ceil((size - k + 1) / s) };
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + k - size, 0);
    return { before: Math.floor(total / 2), out };
  }
  return { before: pad[0], out: Math.floor((size + pad[0] + pad[1] - k) / s) + 1 };
}

export function geometry(
  xShape: number[],
  wShape: number[],
  strides: [number, number],
  pad: Pad,
  [dh, dw]: [number, number] = [1, 1],
): ConvGeometry {
  const [B, H, W, Ci] = xShape;
  const [KH, KW, , Co] = wShape;
  const [sh, sw] = strides;
  // A dilated kernel covers (k − 1)·d + 1 pixels.
  const ph = axis(H, (KH - 1) * dh + 1, sh, typeof pad === 'string' ? pad : pad[1]);
  const pw = axis(W, (KW - 1) * dw + 1, sw, typeof pad === 'string' ? pad : pad[2]);
  return { B, H, W, Ci, KH, KW, Co, sh, sw, top: ph.before, left: pw.before, OH: ph.out, OW: pw.out, dh, dw };
}

/** Calls visit(xIndex, wIndex, yIndex) for every multiply-add of the forward convolution. */
function forEachTap(g: ConvGeometry, visit: (xi: number, wi: number, yi: number) => void): void {
  const { B, H, W, Ci, KH, KW, Co, sh, sw, top, left, OH, OW, dh = 1, dw = 1 } = g;
  for (let b = 0; b < B; b++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let kh = 0; kh < KH; kh++) {
          const i = oh * sh + kh * dh - top;
          if (i < 0 || i >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const j = ow * sw + kw * dw - left;
            if (j < 0 || j >= W) continue;
            for (let ci = 0; ci < Ci; ci++)
              for (let co = 0; co < Co; co++) {
                visit(((b * H + i) * W + j) * Ci + ci, ((kh * KW + kw) * Ci + ci) * Co + co, ((b * OH + oh) * OW + ow) * Co + co);
              }
          }
        }
}

export function convForward(x: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const y = new Float64Array(g.B * g.OH * g.OW * g.Co);
  forEachTap(g, (xi, wi, yi) => (y[yi] += x[xi] * w[wi]));
  return y;
}

export function convBackpropInput(dy: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const dx = new Float64Array(g.B * g.H * g.W * g.Ci);
  forEachTap(g, (xi, wi, yi) => (dx[xi] += dy[yi] * w[wi]));
  return dx;
}

export function convBackpropFilter(x: ArrayLike<number>, dy: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const dw = new Float64Array(g.KH * g.KW * g.Ci * g.Co);
  forEachTap(g, (xi, wi, yi) => (dw[wi] += x[xi] * dy[yi]));
  return dw;
}

/** max |a − ref| / max |ref|: the error relative to the size of the result. */
export function relativeError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`length ${a.length} vs ${ref.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / Math.max(scale, 1e-30);
}

/** Deterministic uniform values in [-1, 1) (mulberry32), so failures reproduce. */
export function randomValues(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
