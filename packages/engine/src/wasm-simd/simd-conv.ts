import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, type Geometry } from '../conv-kernels.js';
import { withRunner, type KernelRunner } from '../kernel-runner.js';
import { CONV_PARAMS, PANEL_COLUMNS, TILE_ROWS, convModuleBytes, type MultiplyAdd } from './conv-module.js';

type Info = tf.TensorInfo;

/** The parts of tfjs-backend-wasm's emscripten module that the convolution uses. */
export interface WasmHeapModule {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  HEAPU8: Uint8Array;
}

export interface ConvExports {
  conv: (...args: number[]) => void;
  pack: (...args: number[]) => void;
}

/**
 * Runs `conv` over output rows [0, rows): the calling thread takes one share and helper threads the others, each
 * share a whole number of tiles. `args` are conv's parameters after mBegin and mEnd.
 */
export interface RowSplitter {
  readonly threads: number;
  run(rows: number, args: number[]): void;
  /** Ends helper threads, if any. */
  stop?(): void;
}

/** Where the convolution is worth its set-up: enough work, a whole number of panels, enough channels per tap. */
export const SIMD_CONV_MIN_FLOPS = 1 << 22;
export const SIMD_CONV_MIN_CHANNELS = 8;

/** Rows per cache block (see conv-module.ts); 64 output pixels' patches of a 4×4×64 layer are ~256 KiB. */
const BLOCK_ROWS = 64;

/** The sizes of one convolution (conv-kernels.ts's geometry, dilations included). */
export type ConvShape = Geometry;

/** The geometry of a float32 NHWC convolution, or null for another layout or type (the stock kernel then runs). */
export function convShape(x: Info, filter: Info, attrs: tf.Conv2DAttrs): ConvShape | null {
  if (attrs.dataFormat !== 'NHWC' && attrs.dataFormat != null) return null;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4 || filter.shape.length !== 4) return null;
  const [B, H, W, Ci] = x.shape as [number, number, number, number];
  const [KH, KW, filterCi, Co] = filter.shape as [number, number, number, number];
  // tfjs's conv2d op checks this; a kernel called directly may not have been (the stock kernel then reports it).
  if (filterCi !== Ci) return null;
  return convGeometry([B, H, W, Ci], [KH, KW, Ci, Co], attrs.strides, attrs.pad, attrs.dimRoundingMode, attrs.dilations ?? 1);
}

export function simdConvApplies(s: ConvShape): boolean {
  const flops = 2 * s.B * s.OH * s.OW * s.KH * s.KW * s.Ci * s.Co;
  return s.Co % PANEL_COLUMNS === 0 && s.Ci >= SIMD_CONV_MIN_CHANNELS && flops >= SIMD_CONV_MIN_FLOPS;
}

/**
 * For each output pixel and tap, the byte offset from x's start of the Ci channels the tap reads, or -1 in the
 * padding. Depends only on the shape, so it is built once per shape and kept in the heap.
 */
export function indirection(s: ConvShape): Int32Array {
  const taps = s.KH * s.KW;
  const out = new Int32Array(s.B * s.OH * s.OW * taps);
  let i = 0;
  for (let b = 0; b < s.B; b++)
    for (let oy = 0; oy < s.OH; oy++)
      for (let ox = 0; ox < s.OW; ox++)
        for (let ky = 0; ky < s.KH; ky++) {
          const iy = oy * s.sh - s.top + ky * s.dh;
          for (let kx = 0; kx < s.KW; kx++, i++) {
            const ix = ox * s.sw - s.left + kx * s.dw;
            out[i] = iy < 0 || iy >= s.H || ix < 0 || ix >= s.W ? -1 : ((b * s.H + iy) * s.W + ix) * s.Ci * 4;
          }
        }
  return out;
}

const shapeKey = (s: ConvShape): string =>
  [s.B, s.H, s.W, s.Ci, s.KH, s.KW, s.OH, s.OW, s.sh, s.sw, s.dh, s.dw, s.top, s.left].join(',');

/** Heap buffers owned by the convolution (never tensors): grown, never shrunk, freed with `dispose`. */
class Scratch {
  pointer = 0;
  bytes = 0;
  constructor(private readonly wasm: WasmHeapModule) {}
  /** At least `bytes`, zero-filled when `zeroed` (contents are not kept across growth). */
  ensure(bytes: number, zeroed = false): number {
    if (bytes > this.bytes) {
      if (this.pointer) this.wasm._free(this.pointer);
      this.bytes = Math.max(bytes, Math.ceil(this.bytes * 1.5));
      this.pointer = this.wasm._malloc(this.bytes) >>> 0;
      if (!this.pointer) throw new Error(`Gantry engine: out of wasm memory for ${this.bytes} bytes of convolution scratch`);
      if (zeroed) this.wasm.HEAPU8.fill(0, this.pointer, this.pointer + this.bytes);
    }
    return this.pointer;
  }
  dispose(): void {
    if (this.pointer) this.wasm._free(this.pointer);
    this.pointer = 0;
    this.bytes = 0;
  }
}

/** Most shapes kept in the indirection cache (a training step has a handful; each entry is M·taps·4 bytes). */
export const INDIRECTION_CACHE_SIZE = 32;

/**
 * Gantry's wasm convolution: relaxed-SIMD FMA indirect GEMM (conv-module.ts), rows split over `splitter`'s threads.
 * Lives in tfjs-backend-wasm's heap: it reads and writes tensors in place and keeps its own buffers there.
 */
export class SimdConv {
  private readonly zero: Scratch;
  private readonly packed: Scratch;
  /** Heap pointers of the indirection tables by shape, least recently used first. */
  private readonly indirections = new Map<string, number>();

  constructor(
    readonly wasm: EmscriptenWasm,
    readonly exports: ConvExports,
    readonly splitter: RowSplitter,
  ) {
    this.zero = new Scratch(wasm);
    this.packed = new Scratch(wasm);
  }

  /** Shapes whose indirection table is kept (at most INDIRECTION_CACHE_SIZE). */
  get cachedShapes(): number {
    return this.indirections.size;
  }

  private indirectionPointer(s: ConvShape): number {
    const key = shapeKey(s);
    const hit = this.indirections.get(key);
    if (hit !== undefined) {
      this.indirections.delete(key);
      this.indirections.set(key, hit);
      return hit;
    }
    if (this.indirections.size >= INDIRECTION_CACHE_SIZE) {
      const [oldKey, oldPointer] = this.indirections.entries().next().value as [string, number];
      this.wasm._free(oldPointer);
      this.indirections.delete(oldKey);
    }
    const table = indirection(s);
    const pointer = this.wasm._malloc(table.byteLength) >>> 0;
    if (!pointer) throw new Error('Gantry engine: out of wasm memory for a convolution indirection table');
    this.wasm.HEAPU8.set(new Uint8Array(table.buffer), pointer);
    this.indirections.set(key, pointer);
    return pointer;
  }

  /** y = conv(x, filter) (+ bias), NHWC, filter HWIO, for a shape `simdConvApplies` accepted. */
  run(r: KernelRunner, s: ConvShape, x: Info, filter: Info, bias?: Info): Info {
    const backend = r.backend as unknown as { getMemoryOffset(dataId: object): number };
    const taps = s.KH * s.KW;
    const rows = s.B * s.OH * s.OW;
    const y = r.empty([s.B, s.OH, s.OW, s.Co]);
    // Every heap allocation first (malloc may grow the heap); addresses stay valid across growth, views do not.
    const zeroBytes = 4 * Math.max(s.Ci, s.Co);
    const zero = this.zero.ensure(zeroBytes, true);
    const packed = this.packed.ensure(taps * s.Ci * s.Co * 4);
    const ind = this.indirectionPointer(s);
    const address = (info: Info): number => backend.getMemoryOffset(info.dataId) >>> 0;
    // HWIO: tap t's rows start t·Ci·Co values in, channel c's c·Co (pack takes any strides).
    this.exports.pack(address(filter), packed, taps, s.Ci, s.Ci * s.Co * 4, s.Co * 4, s.Co);
    const args: Record<(typeof CONV_PARAMS)[number], number> = {
      mBegin: 0,
      mEnd: rows,
      taps,
      ci: s.Ci,
      ind,
      x: address(x),
      zero,
      panels: packed,
      bias: bias ? address(bias) : zero,
      out: address(y),
      n: s.Co,
      blockRows: BLOCK_ROWS,
    };
    this.splitter.run(rows, CONV_PARAMS.slice(2).map((p) => args[p]));
    return y;
  }

  dispose(): void {
    this.zero.dispose();
    this.packed.dispose();
    for (const pointer of this.indirections.values()) this.wasm._free(pointer);
    this.indirections.clear();
  }
}

/** Shares of `rows` for `threads` threads, each a whole number of tiles (the last takes the remainder). */
export function rowShares(rows: number, threads: number): [number, number][] {
  const tiles = Math.ceil(rows / TILE_ROWS);
  const shares: [number, number][] = [];
  for (let t = 0; t < threads; t++) {
    const begin = Math.min(rows, Math.round((tiles * t) / threads) * TILE_ROWS);
    const end = t === threads - 1 ? rows : Math.min(rows, Math.round((tiles * (t + 1)) / threads) * TILE_ROWS);
    if (end > begin) shares.push([begin, end]);
  }
  return shares;
}

// On globalThis, like the kernel registry it serves: a second copy of this module (ESM and CJS builds, vitest's
// per-file module graphs) must use the convolution and threads the first one started.
const ACTIVE_KEY = Symbol.for('gantry.engine.simd-conv');
const state = ((globalThis as Record<symbol, unknown>)[ACTIVE_KEY] ??= { conv: null }) as { conv: SimdConv | null };

/** The convolution the wasm Conv2D kernels use, once started (null: the stock kernels run). */
export function activeSimdConv(): SimdConv | null {
  return state.conv;
}

export function setActiveSimdConv(conv: SimdConv | null): void {
  state.conv = conv;
}

/** f32x4.relaxed_madd(0, 0, 0) as the body of a () -> v128 function. */
function relaxedSimdProbe(): Uint8Array<ArrayBuffer> {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b];
  // prettier-ignore
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x0a, body.length + 2, 0x01, body.length, ...body,
  ]);
}

/** Whether this engine accepts relaxed SIMD (Chrome 114+, Node 22+; Node 20 behind a flag the Node loader sets). */
export function hasRelaxedSimd(): boolean {
  try {
    return WebAssembly.validate(relaxedSimdProbe());
  } catch {
    return false;
  }
}

export interface EmscriptenWasm extends WasmHeapModule {
  /** The threaded build's (shared) memory. */
  wasmMemory?: WebAssembly.Memory;
  /** The single-threaded build's exports, its memory among them. */
  asm?: { memory?: WebAssembly.Memory };
}

const threadNote = (threads: number): string => `FMA conv, ${threads} thread${threads === 1 ? '' : 's'}`;

/**
 * Starts the FMA convolution on a tfjs-backend-wasm backend: the module is assembled for its memory (shared or not)
 * and `splitter` (default: the calling thread alone) runs its rows. Returns a note for the backend line, or null when
 * the engine has no relaxed SIMD or the backend is not one whose heap it can reach (the stock kernels stay).
 */
export function startSimdConvOn(
  backend: unknown,
  splitter?: (exports: ConvExports, module: WebAssembly.Module, memory: WebAssembly.Memory) => RowSplitter,
): string | null {
  const wasm = (backend as { wasm?: EmscriptenWasm }).wasm;
  const running = state.conv;
  if (running != null && running.wasm === wasm) return threadNote(running.splitter.threads);
  // A wasm backend removed and created again has a new heap: the old convolution's threads go with the old one.
  if (running) {
    state.conv = null;
    running.splitter.stop?.();
  }
  const instance = wasm && hasRelaxedSimd() ? instantiateConvModule(wasm) : null;
  if (wasm == null || instance == null) return null;
  const { exports, module, memory } = instance;
  const rows = splitter?.(exports, module, memory) ?? callingThreadOnly(exports);
  state.conv = new SimdConv(wasm, exports, rows);
  return threadNote(rows.threads);
}

/**
 * The conv module assembled for a tfjs-backend-wasm backend's memory (shared or not) and instantiated on it, or null
 * when the backend's heap cannot be reached. `mul-add` is the SIMD128 variant, for measurements.
 */
export function instantiateConvModule(
  wasm: EmscriptenWasm,
  multiplyAdd: MultiplyAdd = 'fma',
): { exports: ConvExports; module: WebAssembly.Module; memory: WebAssembly.Memory } | null {
  const memory = wasm.wasmMemory ?? wasm.asm?.memory;
  if (!memory || typeof wasm._malloc !== 'function') return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const module = new WebAssembly.Module(convModuleBytes({ shared, maximumPages: shared ? 65536 : undefined }, multiplyAdd));
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as ConvExports;
  return { exports, module, memory };
}

/** Every row on the calling thread. */
export function callingThreadOnly(exports: ConvExports): RowSplitter {
  return { threads: 1, run: (rows, args) => exports.conv(0, rows, ...args) };
}

/**
 * For pages: starts the FMA convolution on the active wasm backend, on the page's own thread (a page's wasm heap is
 * not shared unless it is cross-origin isolated). Its results equal Node's bit for bit, whatever Node's thread count.
 * Returns a note for the backend line, or null where the browser lacks relaxed SIMD.
 */
export function startWasmFmaConv(): string | null {
  return tf.getBackend() === 'wasm' ? startSimdConvOn(tf.backend()) : null;
}

/** Which convolution the active wasm backend runs: the FMA kernel, or XNNPACK's (off, or no relaxed SIMD). */
export function wasmConvolution(): 'fma' | 'xnnpack' {
  return activeSimdConvFor(tf.backend()) != null ? 'fma' : 'xnnpack';
}

/** The active convolution if it lives in this backend's heap. */
function activeSimdConvFor(backend: unknown): SimdConv | null {
  const conv = state.conv;
  return conv != null && (backend as { wasm?: unknown }).wasm === conv.wasm ? conv : null;
}

/**
 * wasm's Conv2D and FusedConv2D: the FMA convolution where it has started and applies, for a linear activation (what
 * tfjs fuses under a tape; Conv2D has none) and an optional [Co] bias; else the stock (XNNPACK) kernel.
 */
export function simdConvKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const conv = activeSimdConvFor(args.backend);
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info | undefined>;
    const attrs = args.attrs as unknown as Partial<tf.FusedConv2DAttrs> & tf.Conv2DAttrs;
    const s = conv && x && filter ? convShape(x, filter, attrs) : null;
    const plain = (attrs.activation ?? 'linear') === 'linear' && preluActivationWeights == null;
    const biasFits = bias == null || (bias.dtype === 'float32' && tf.util.sizeFromShape(bias.shape) === s?.Co);
    if (conv == null || s == null || !plain || !biasFits || !simdConvApplies(s)) return stock.kernelFunc(args);
    return withRunner(args.backend as tf.KernelBackend, 'wasm', (r) => conv.run(r, s, x!, filter!, bias));
  };
}
