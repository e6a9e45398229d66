import { FunctionBuilder, I32, V128, assembleModule, type MemoryImport } from './assembler.js';

/**
 * The module behind Gantry's wasm convolution (`simd-conv.ts`): an indirect GEMM whose inner product is relaxed SIMD's
 * fused multiply-add. Why by hand: tfjs-backend-wasm's prebuilt XNNPACK multiplies and adds separately and reaches
 * ~28 GFLOP/s per core here; measured in this Node, a 4×8 tile of `f32x4.relaxed_madd` fed by one splat load per row
 * and two filter loads per step runs at ~40 GFLOP/s, the same tile with mul + add at ~30 (ENGINE.md, "FMA convolution").
 *
 * Layouts (all byte addresses into the shared heap):
 * - output: [M, N] row-major, M = B·OH·OW output pixels, N = Co output channels (a multiple of 8);
 * - filter: packed by `pack` into N/8 panels, each [taps, ci, 8] (the 8 output channels of the panel contiguous);
 * - indirection: [M, taps] i32, the byte offset from `x` of the `ci` input channels that tap reads for that pixel, or
 *   -1 where the tap falls in the padding (then it reads `zero`, ci zeros);
 * - bias: N floats added to every row (a zero buffer when there is none).
 *
 * Each output value is one chain of FMAs over taps then channels, in that order, so results do not depend on how
 * rows are split between threads.
 */

/** Output rows per tile: 4 rows × 2 vectors = 8 accumulators, which with the operands fits V8's 15 xmm registers. */
export const TILE_ROWS = 4;
/** Output channels per panel. */
export const PANEL_COLUMNS = 8;
const VECTORS = PANEL_COLUMNS / 4;

export const CONV_PARAMS = [
  'mBegin',
  'mEnd',
  'taps',
  'ci',
  'ind',
  'x',
  'zero',
  'panels',
  'bias',
  'out',
  'n',
  'blockRows',
] as const;

/** How the tile multiplies and accumulates: relaxed SIMD's fused multiply-add, or f32x4.mul then f32x4.add (SIMD128). */
export type MultiplyAdd = 'fma' | 'mul-add';

function convFunction(multiplyAdd: MultiplyAdd): FunctionBuilder {
  const f = new FunctionBuilder(
    'conv',
    CONV_PARAMS.map((p) => [p, I32]),
  );
  for (const l of ['mb', 'me', 'panel', 'col', 'm0', 't', 'kk', 'bp', 'indRow', 'rowStride', 'ldc', 'panelBytes', 'entry', 'cp'])
    f.local(l, I32);
  for (let r = 0; r < TILE_ROWS; r++) f.local(`a${r}`, I32);
  for (let r = 0; r < TILE_ROWS; r++) for (let v = 0; v < VECTORS; v++) f.local(`acc${r}_${v}`, V128);
  for (let v = 0; v < VECTORS; v++) f.local(`b${v}`, V128);
  f.local('s', V128);

  /** One tile of `rows` output rows starting at m0, panel `panel`, columns from byte `col`. */
  const tile = (rows: number): void => {
    for (let v = 0; v < VECTORS; v++) f.get('bias').get('col').i32Add().v128Load(16 * v).set(`b${v}`);
    for (let r = 0; r < rows; r++) for (let v = 0; v < VECTORS; v++) f.get(`b${v}`).set(`acc${r}_${v}`);
    f.get('panel').set('bp');
    f.get('ind').get('m0').get('rowStride').i32Mul().i32Add().set('indRow');
    f.get('taps').set('t');
    f.loop(() => {
      for (let r = 0; r < rows; r++) {
        // a_r = entry < 0 ? zero : x + entry
        f.get('zero');
        f.get('x').get('indRow');
        if (r > 0) f.get('rowStride').i32(r).i32Mul().i32Add();
        f.i32Load().tee('entry').i32Add();
        f.get('entry').i32(-1).i32Eq().select().set(`a${r}`);
      }
      f.get('ci').set('kk');
      f.loop(() => {
        for (let v = 0; v < VECTORS; v++) f.get('bp').v128Load(16 * v).set(`b${v}`);
        for (let r = 0; r < rows; r++) {
          f.get(`a${r}`).v128Load32Splat().set('s');
          for (let v = 0; v < VECTORS; v++) {
            if (multiplyAdd === 'fma') f.get('s').get(`b${v}`).get(`acc${r}_${v}`).f32x4RelaxedMadd();
            else f.get(`acc${r}_${v}`).get('s').get(`b${v}`).f32x4Mul().f32x4Add();
            f.set(`acc${r}_${v}`);
          }
          f.get(`a${r}`).i32(4).i32Add().set(`a${r}`);
        }
        f.get('bp').i32(4 * PANEL_COLUMNS).i32Add().set('bp');
        f.get('kk').i32(1).i32Sub().tee('kk').continueIf();
      });
      f.get('indRow').i32(4).i32Add().set('indRow');
      f.get('t').i32(1).i32Sub().tee('t').continueIf();
    });
    f.get('out').get('m0').get('ldc').i32Mul().i32Add().get('col').i32Add().set('cp');
    for (let r = 0; r < rows; r++) {
      for (let v = 0; v < VECTORS; v++) {
        f.get('cp');
        if (r > 0) f.get('ldc').i32(r).i32Mul().i32Add();
        f.get(`acc${r}_${v}`).v128Store(16 * v);
      }
    }
  };

  f.get('taps').i32(2).i32Shl().set('rowStride');
  f.get('n').i32(2).i32Shl().set('ldc');
  f.get('taps').get('ci').i32Mul().i32(4 * PANEL_COLUMNS).i32Mul().set('panelBytes');
  f.get('mBegin').set('mb');
  // Rows in blocks of `blockRows`, so a block's input patches stay in cache while every panel passes over them.
  f.loop(() => {
    f.get('mb').get('blockRows').i32Add().set('me');
    f.get('me').get('mEnd').i32GtU().ifThen(() => f.get('mEnd').set('me'));
    f.get('panels').set('panel');
    f.i32(0).set('col');
    f.loop(() => {
      f.get('mb').set('m0');
      f.get('m0').i32(TILE_ROWS).i32Add().get('me').i32LeU().ifThen(() =>
        f.loop(() => {
          tile(TILE_ROWS);
          f.get('m0').i32(TILE_ROWS).i32Add().tee('m0').i32(TILE_ROWS).i32Add().get('me').i32LeU().continueIf();
        }),
      );
      f.get('m0').get('me').i32LtU().ifThen(() =>
        f.loop(() => {
          tile(1);
          f.get('m0').i32(1).i32Add().tee('m0').get('me').i32LtU().continueIf();
        }),
      );
      f.get('panel').get('panelBytes').i32Add().set('panel');
      f.get('col').i32(4 * PANEL_COLUMNS).i32Add().tee('col').get('ldc').i32LtU().continueIf();
    });
    f.get('me').tee('mb').get('mEnd').i32LtU().continueIf();
  });
  return f;
}

export const PACK_PARAMS = ['src', 'dst', 'taps', 'ci', 'tapStride', 'channelStride', 'n'] as const;

/**
 * Packs a filter into panels: row k = t·ci + c of the [taps·ci, n] matrix starts at src + t·tapStride +
 * c·channelStride (bytes), so an HWIO filter and other layouts (a gradient used as a filter) pack without a transpose.
 */
function packFunction(): FunctionBuilder {
  const f = new FunctionBuilder(
    'pack',
    PACK_PARAMS.map((p) => [p, I32]),
  );
  for (const l of ['col', 'ldc', 'tapRow', 't', 'row', 'c']) f.local(l, I32);
  f.get('n').i32(2).i32Shl().set('ldc');
  f.i32(0).set('col');
  f.loop(() => {
    f.get('src').get('col').i32Add().set('tapRow');
    f.get('taps').set('t');
    f.loop(() => {
      f.get('tapRow').set('row');
      f.get('ci').set('c');
      f.loop(() => {
        for (let v = 0; v < VECTORS; v++) f.get('dst').get('row').v128Load(16 * v).v128Store(16 * v);
        f.get('dst').i32(4 * PANEL_COLUMNS).i32Add().set('dst');
        f.get('row').get('channelStride').i32Add().set('row');
        f.get('c').i32(1).i32Sub().tee('c').continueIf();
      });
      f.get('tapRow').get('tapStride').i32Add().set('tapRow');
      f.get('t').i32(1).i32Sub().tee('t').continueIf();
    });
    f.get('col').i32(4 * PANEL_COLUMNS).i32Add().tee('col').get('ldc').i32LtU().continueIf();
  });
  return f;
}

/** The module's bytes for a memory of this kind; `mul-add` is the SIMD128 variant, for measurements. */
export function convModuleBytes(memory: MemoryImport, multiplyAdd: MultiplyAdd = 'fma'): Uint8Array<ArrayBuffer> {
  return assembleModule(memory, [convFunction(multiplyAdd), packFunction()]);
}
