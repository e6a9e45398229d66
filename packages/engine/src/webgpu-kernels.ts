import * as tf from '@tensorflow/tfjs-core';
import { GantryError, registerNestedGradientFixes } from '@gantry/core';
import { adamPatched, adamStep, patchAdam, type AdamInternals } from './adam-patch.js';

/**
 * Gantry's kernels and fixes for tfjs-backend-webgpu 4.22, registered by initWebGpu().
 *
 * Kernels are tfjs "programs" (a WGSL body plus metadata) run through the backend's own runWebGPUProgram, which adds
 * the bindings, the uniform block and the pipeline cache. The fixes replace per-call costs of the stock backend that
 * dominate a training step of small models (see ENGINE.md, "GPU").
 */

type Info = tf.TensorInfo;
type UniformData = { type: 'int32' | 'float32' | 'uint32'; data: number[] };

/** What runWebGPUProgram reads from a program object (tfjs-backend-webgpu's WebGPUProgram). */
interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  getUserCode(): string;
}

interface TensorData {
  values: ArrayLike<number> | null;
  dtype: tf.DataType;
  shape: number[];
  resource: unknown;
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend that Gantry uses (checked at start-up: see `internalsPresent`). */
export interface WebGpuBackendInternals extends tf.KernelBackend {
  device: {
    queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBufferView): void };
    limits: { maxStorageBuffersPerShaderStage: number };
  };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBuffer, dataOffset: number, size: number): void };
  tensorMap: { get(dataId: object): TensorData };
  bufferManager: { acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): unknown };
  runWebGPUProgram(program: WebGpuProgram, inputs: Info[], outputDtype: tf.DataType, uniforms?: UniformData[], output?: Info): Info;
  uploadToGPU(dataId: object): void;
  disposeData(dataId: object, force?: boolean): boolean;
  makeTensorInfo(shape: number[], dtype: tf.DataType): Info;
  makeUniforms(uniforms: UniformData[]): { offset: number; size: number; buffer: unknown };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: { beginComputePass(descriptor: object): GpuPass } | null;
  computePassEncoder: GpuPass | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
}

interface GpuPass {
  setPipeline(pipeline: unknown): void;
  setBindGroup(index: number, group: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
}

interface GpuDevice {
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
  createComputePipeline(descriptor: object): { getBindGroupLayout(index: number): unknown };
  createBindGroup(descriptor: object): unknown;
}

function internalsPresent(backend: unknown): backend is WebGpuBackendInternals {
  const b = backend as Record<string, unknown>;
  return (
    typeof b.runWebGPUProgram === 'function' &&
    typeof b.uploadToGPU === 'function' &&
    b.tensorMap != null &&
    b.bufferManager != null &&
    b.queue != null &&
    typeof b.makeUniforms === 'function' &&
    typeof b.ensureCommandEncoderReady === 'function' &&
    typeof b.submitQueue === 'function' &&
    b.commandQueueOwnedIds instanceof WeakSet
  );
}

// ------------------------------------------------------------------------------------------------ backend fixes

const GPU_BUFFER_USAGE_COPY_SRC = 0x0004;
const GPU_BUFFER_USAGE_COPY_DST = 0x0008;
const GPU_BUFFER_USAGE_STORAGE = 0x0080;

/**
 * Uploads CPU-side tensor values with queue.writeBuffer. Stock tfjs creates a mapped staging buffer per upload, copies
 * it inside the command encoder (which ends the compute pass) and destroys it after submit; a training step uploads
 * every scalar operand (Adam's betas, learning rate, loss weights) and every random tensor, so ~120 buffer
 * creations and pass breaks per DCGAN step. writeBuffer is ordered before the pending commands of the next submit,
 * which is safe here because the destination comes from the free pool: no recorded command refers to it.
 */
function installUploadFix(backend: WebGpuBackendInternals): void {
  const stock = backend.uploadToGPU.bind(backend);
  backend.uploadToGPU = function uploadToGPU(dataId: object): void {
    const data = backend.tensorMap.get(dataId);
    if (data.resource != null || data.values == null) return stock(dataId);
    const { dtype } = data;
    if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') return stock(dataId);
    const count = tf.util.sizeFromShape(data.shape);
    const size = count * 4;
    const buffer = backend.bufferManager.acquireBuffer(
      size,
      GPU_BUFFER_USAGE_STORAGE | GPU_BUFFER_USAGE_COPY_SRC | GPU_BUFFER_USAGE_COPY_DST,
    );
    let typed: Float32Array | Int32Array;
    if (dtype === 'float32') {
      typed = data.values instanceof Float32Array ? data.values : Float32Array.from(data.values);
    } else {
      typed = data.values instanceof Int32Array ? data.values : Int32Array.from(data.values);
    }
    if (size > 0) backend.queue.writeBuffer(buffer, 0, typed.buffer as ArrayBuffer, typed.byteOffset, size);
    data.values = null;
    data.resource = buffer;
  };
}


/**
 * tfjs reads GPU data synchronously through an OffscreenCanvas, which Node lacks ("OffscreenCanvas is not defined").
 * WebGPU has no synchronous readback at all, so say what to do instead.
 */
function installReadSyncMessage(backend: WebGpuBackendInternals): void {
  const stock = backend.readSync.bind(backend);
  backend.readSync = function readSync(dataId: object) {
    const data = backend.tensorMap.get(dataId);
    if (data.values != null || typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') {
      return stock(dataId);
    }
    throw new GantryError(
      'dataSync()/arraySync() cannot read GPU data on the webgpu backend in Node (WebGPU has no synchronous readback): use await tensor.data()',
    );
  };
}

/**
 * Caches GPUComputePipeline.getBindGroupLayout(0): tfjs asks for it on every dispatch and Dawn returns a new object
 * each time. The layout of an 'auto'-layout pipeline never changes, so one object per pipeline serves.
 */
function installBindGroupLayoutCache(): void {
  const ctor = (globalThis as unknown as { GPUComputePipeline?: { prototype: Record<string, unknown> } }).GPUComputePipeline;
  if (!ctor || ctor.prototype.__gantryLayoutCache) return;
  const stock = ctor.prototype.getBindGroupLayout as (this: object, index: number) => unknown;
  const cache = new WeakMap<object, unknown>();
  ctor.prototype.getBindGroupLayout = function getBindGroupLayout(this: object, index: number): unknown {
    if (index !== 0) return stock.call(this, index);
    let layout = cache.get(this);
    if (layout === undefined) {
      layout = stock.call(this, 0);
      cache.set(this, layout);
    }
    return layout;
  };
  ctor.prototype.__gantryLayoutCache = true;
}

// ------------------------------------------------------------------------------------------------ filter gradient

const TILE = 64;
const TILE_K = 16;

/**
 * dW[kh, kw, ci, co] = sum over (b, oh, ow) of x[b, oh*sh + kh - pt, ow*sw + kw - pl, ci] * dy[b, oh, ow, co]
 * as a GEMM with M = KH*KW*Ci rows, N = Co columns and K = B*OH*OW reduced, the im2col operand gathered on the
 * fly. 64x64 output tiles, 16x16 threads with 4x4 results each; the K range is split over `splits` workgroups
 * (gridZ) whose partial sums a second pass adds, because K (batch x pixels) dwarfs M and N.
 * Stock tfjs runs one thread per filter element looping over all of K (1024 threads for a 4x4x1x64 filter).
 */
class FilterGradPartialProgram implements WebGpuProgram {
  variableNames = ['x', 'dy'];
  outputShape: number[];
  shaderKey = 'gantryConv2DFilterGradPartial';
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [16, 16, 1];
  uniforms =
    'mTotal : i32, nTotal : i32, kTotal : i32, kPerSplit : i32, inH : i32, inW : i32, inC : i32, outH : i32, outW : i32, filterW : i32, strideH : i32, strideW : i32, padTop : i32, padLeft : i32,';

  constructor(outputShape: number[], m: number, n: number, splits: number) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(n / TILE), Math.ceil(m / TILE), splits];
  }

  getUserCode(): string {
    return `
      var<workgroup> tileA : array<array<f32, ${TILE}>, ${TILE_K}>;
      var<workgroup> tileB : array<array<f32, ${TILE}>, ${TILE_K}>;

      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let lid = ty * 16 + tx;
        let n0 = i32(workgroupId.x) * ${TILE};
        let m0 = i32(workgroupId.y) * ${TILE};
        let split = i32(workgroupId.z);
        let M = uniforms.mTotal;
        let N = uniforms.nTotal;
        let kBegin = split * uniforms.kPerSplit;
        let kEnd = min(kBegin + uniforms.kPerSplit, uniforms.kTotal);
        var acc : array<array<f32, 4>, 4>;
        for (var i = 0; i < 4; i++) { for (var j = 0; j < 4; j++) { acc[i][j] = 0.0; } }

        // The loop bound comes from uniforms alone so that the barriers sit in uniform control flow.
        for (var kt = 0; kt < uniforms.kPerSplit; kt = kt + ${TILE_K}) {
          let k0 = kBegin + kt;
          for (var r = 0; r < ${(TILE * TILE_K) / 256}; r++) {
            let e = lid + r * 256;
            let kk = e / ${TILE};
            let mm = e % ${TILE};
            let k = k0 + kk;
            let m = m0 + mm;
            var a = 0.0;
            if (k < kEnd && m < M) {
              let ci = m % uniforms.inC;
              let t = m / uniforms.inC;
              let kw = t % uniforms.filterW;
              let kh = t / uniforms.filterW;
              let ow = k % uniforms.outW;
              let t2 = k / uniforms.outW;
              let oh = t2 % uniforms.outH;
              let b = t2 / uniforms.outH;
              let ih = oh * uniforms.strideH + kh - uniforms.padTop;
              let iw = ow * uniforms.strideW + kw - uniforms.padLeft;
              if (ih >= 0 && ih < uniforms.inH && iw >= 0 && iw < uniforms.inW) {
                a = x[((b * uniforms.inH + ih) * uniforms.inW + iw) * uniforms.inC + ci];
              }
            }
            tileA[kk][mm] = a;
            let n = n0 + mm;
            var bv = 0.0;
            if (k < kEnd && n < N) {
              bv = dy[k * N + n];
            }
            tileB[kk][mm] = bv;
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TILE_K}; kk++) {
            var av : array<f32, 4>;
            var bw : array<f32, 4>;
            for (var i = 0; i < 4; i++) { av[i] = tileA[kk][ty + 16 * i]; }
            for (var j = 0; j < 4; j++) { bw[j] = tileB[kk][tx + 16 * j]; }
            for (var i = 0; i < 4; i++) {
              for (var j = 0; j < 4; j++) { acc[i][j] = fma(av[i], bw[j], acc[i][j]); }
            }
          }
          workgroupBarrier();
        }
        let base = split * M * N;
        for (var i = 0; i < 4; i++) {
          let m = m0 + ty + 16 * i;
          if (m < M) {
            for (var j = 0; j < 4; j++) {
              let n = n0 + tx + 16 * j;
              if (n < N) { result[base + m * N + n] = acc[i][j]; }
            }
          }
        }
      }
    `;
  }
}

/** out[i] = sum over s of partial[s, i]. */
class SplitSumProgram implements WebGpuProgram {
  variableNames = ['partial'];
  outputShape: number[];
  shaderKey = 'gantrySplitSum';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  uniforms = 'splits : i32, count : i32,';
  size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(outputShape) / 256), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var p = 0; p < uniforms.splits; p++) { s = s + partial[p * uniforms.count + index]; }
          setOutputAtIndex(index, s);
        }
      }
    `;
  }
}

/** Workgroups to aim for: enough to fill a large GPU (132 SMs on an H100) several times over. */
const TARGET_WORKGROUPS = 1024;

/**
 * How the K range (batch x output pixels) of the filter-gradient GEMM is split over workgroups: enough splits to
 * reach TARGET_WORKGROUPS, each a whole number of K tiles and at least 256 long; every K index in exactly one split.
 */
export function planFilterGradSplits(m: number, n: number, k: number): { splits: number; kPerSplit: number } {
  const tiles = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  const wanted = Math.max(1, Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.ceil(k / 256)));
  const kPerSplit = Math.ceil(Math.ceil(k / wanted) / TILE_K) * TILE_K;
  return { splits: Math.ceil(k / kPerSplit), kPerSplit };
}

export function conv2dBackpropFilterWebGpu(
  backend: WebGpuBackendInternals,
  x: Info,
  dy: Info,
  attrs: tf.Conv2DBackpropFilterAttrs,
): Info {
  const { strides, pad, dimRoundingMode, filterShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const [KH, KW, Ci, Co] = filterShape;
  const m = KH * KW * Ci;
  const n = Co;
  const k = info.batchSize * info.outHeight * info.outWidth;
  const { splits, kPerSplit } = planFilterGradSplits(m, n, k);
  const uniforms: UniformData[] = [
    m,
    n,
    k,
    kPerSplit,
    info.inHeight,
    info.inWidth,
    Ci,
    info.outHeight,
    info.outWidth,
    KW,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ].map((v) => ({ type: 'int32', data: [v] }));
  if (splits === 1) {
    return backend.runWebGPUProgram(new FilterGradPartialProgram([...filterShape], m, n, 1), [x, dy], 'float32', uniforms);
  }
  const partial = backend.runWebGPUProgram(
    new FilterGradPartialProgram([splits, m * n], m, n, splits),
    [x, dy],
    'float32',
    uniforms,
  );
  try {
    return backend.runWebGPUProgram(new SplitSumProgram([...filterShape]), [partial], 'float32', [
      { type: 'int32', data: [splits] },
      { type: 'int32', data: [m * n] },
    ]);
  } finally {
    backend.disposeData(partial.dataId);
  }
}


// ------------------------------------------------------------------------------------------------ raw dispatch

const pipelines = new WeakMap<object, Map<string, { pipeline: unknown; layout: unknown }>>();

/**
 * Records one compute dispatch with several outputs, which runWebGPUProgram cannot do (it binds one output). The
 * WGSL binds the outputs first (read_write storage), then the inputs (read-only storage), then a uniform block.
 * It follows the backend's own bookkeeping: buffers of every tensor used are marked as owned by the pending command
 * queue (so they are not recycled before the submit), and the queue is submitted every
 * WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches like the backend's own programs.
 */
function dispatchRaw(
  backend: WebGpuBackendInternals,
  key: string,
  code: string,
  outputs: Info[],
  inputs: Info[],
  uniforms: UniformData[],
  workgroups: [number, number, number],
): void {
  const device = (backend as unknown as { device: GpuDevice }).device;
  let cache = pipelines.get(device as object);
  if (!cache) pipelines.set(device as object, (cache = new Map()));
  let entry = cache.get(key);
  if (!entry) {
    const module = device.createShaderModule({ code, label: key });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    entry = { pipeline, layout: pipeline.getBindGroupLayout(0) };
    cache.set(key, entry);
  }
  const tensors = [...outputs, ...inputs];
  for (const t of tensors) backend.uploadToGPU(t.dataId);
  const entries: { binding: number; resource: unknown }[] = tensors.map((t, binding) => ({
    binding,
    resource: { buffer: backend.tensorMap.get(t.dataId).resource },
  }));
  entries.push({ binding: tensors.length, resource: backend.makeUniforms(uniforms) });
  for (const t of tensors) backend.commandQueueOwnedIds.add(t.dataId);
  const bindGroup = device.createBindGroup({ layout: entry.layout, entries });
  backend.ensureCommandEncoderReady();
  if (!backend.computePassEncoder) backend.computePassEncoder = backend.commandEncoder!.beginComputePass({});
  const pass = backend.computePassEncoder;
  pass.setPipeline(entry.pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  backend.dispatchCountInPass++;
  if (backend.dispatchCountInPass >= tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

/** A 1-D launch of `count` threads in workgroups of 256, folded into y when x would pass the 65535 limit. */
function launch1d(count: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(count / 256));
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x), 1];
}

// ------------------------------------------------------------------------------------------------ fused Adam

export const GANTRY_ADAM = 'GantryAdamUpdate';

const ADAM_WGSL = `
struct Params {
  lr : f32, beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, epsilon : f32,
  oneMinusAccBeta1 : f32, oneMinusAccBeta2 : f32, count : u32, rowStride : u32,
};
@group(0) @binding(0) var<storage, read_write> xOut : array<f32>;
@group(0) @binding(1) var<storage, read_write> mOut : array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut : array<f32>;
@group(0) @binding(3) var<storage, read> x : array<f32>;
@group(0) @binding(4) var<storage, read> m : array<f32>;
@group(0) @binding(5) var<storage, read> v : array<f32>;
@group(0) @binding(6) var<storage, read> g : array<f32>;
@group(0) @binding(7) var<uniform> p : Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let i = gid.x + gid.y * p.rowStride;
  if (i >= p.count) { return; }
  let gi = g[i];
  // The same operations in the same order as tfjs's AdamOptimizer.applyGradients.
  let m1 = m[i] * p.beta1 + gi * p.oneMinusBeta1;
  let v1 = v[i] * p.beta2 + (gi * gi) * p.oneMinusBeta2;
  let mHat = m1 / p.oneMinusAccBeta1;
  let vHat = v1 / p.oneMinusAccBeta2;
  mOut[i] = m1;
  vOut[i] = v1;
  xOut[i] = (mHat / (sqrt(vHat) + p.epsilon)) * (-p.lr) + x[i];
}
`;

interface AdamAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Completed updates before this one: the bias corrections use beta^(iterations + 1). */
  iterations: number;
}

/**
 * 1 - beta^(t+1) as float32. tfjs keeps beta^(t+1) in a float32 variable multiplied by beta once per step; the power
 * computed here differs from that product by float32 rounding only (relative 1e-7 per step), and it is what tfjs's
 * own setWeights() restores.
 */
function oneMinusPower(beta: number, iterations: number): number {
  return Math.fround(1 - Math.fround(beta ** (iterations + 1)));
}

function adamKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info[] {
  const backend = args.backend as WebGpuBackendInternals;
  const { x, m, v, g } = args.inputs as Record<string, Info>;
  const a = args.attrs as unknown as AdamAttrs;
  const shape = [...x.shape];
  const outputs = [0, 1, 2].map(() => backend.makeTensorInfo(shape, 'float32'));
  const count = tf.util.sizeFromShape(shape);
  const groups = launch1d(count);
  dispatchRaw(
    backend,
    'gantryAdam',
    ADAM_WGSL,
    outputs,
    [x, m, v, g],
    [
      { type: 'float32', data: [a.learningRate] },
      { type: 'float32', data: [a.beta1] },
      { type: 'float32', data: [1 - a.beta1] },
      { type: 'float32', data: [a.beta2] },
      { type: 'float32', data: [1 - a.beta2] },
      { type: 'float32', data: [a.epsilon] },
      { type: 'float32', data: [oneMinusPower(a.beta1, a.iterations)] },
      { type: 'float32', data: [oneMinusPower(a.beta2, a.iterations)] },
      { type: 'uint32', data: [count] },
      { type: 'uint32', data: [groups[0] * 256] },
    ],
    groups,
  );
  return outputs;
}

/** tf.train.adam's update as one GantryAdamUpdate kernel per weight. */
function webgpuAdam(optimizer: tf.AdamOptimizer, names: string[], gradients: (tf.Tensor | undefined)[]): boolean {
  if (tf.getKernel(GANTRY_ADAM, 'webgpu') == null) return false;
  const self = optimizer as unknown as AdamInternals;
  adamStep(optimizer, names, gradients, (value, m, v, gradient) => {
    const [newValue, newM, newV] = tf.engine().runKernel(
      GANTRY_ADAM,
      { x: value, m, v, g: gradient },
      {
        learningRate: self.learningRate,
        beta1: self.beta1,
        beta2: self.beta2,
        epsilon: self.epsilon,
        iterations: optimizer.iterations,
      },
    ) as tf.Tensor[];
    m.assign(newM);
    v.assign(newV);
    value.assign(newValue);
  });
  return true;
}

/**
 * On the webgpu backend, tf.train.adam's update runs as one kernel per variable instead of ~12 element-wise kernels
 * and 6 scalar uploads (a DCGAN step has 14 variables: ~170 dispatches fewer). Same state (m, v, accBeta1/2, names,
 * getWeights/setWeights), same arithmetic in the same order, except that the bias corrections come from the
 * iteration count (see oneMinusPower); other backends keep their own update (adam-patch.ts). Returns false when it
 * was already installed.
 */
export function installFusedAdam(): boolean {
  if (adamPatched('webgpu')) return false;
  patchAdam('webgpu', webgpuAdam);
  return true;
}



// ------------------------------------------------------------------------------------------------ random normals

/**
 * out[i] = mean + std * z_i, z_i standard normal from a counter-based generator: two 24-bit uniforms from the PCG
 * hash (Jarzynski and Olano 2020) of (seed, i), then Box-Muller. tf.randomNormal draws on the CPU in JavaScript and
 * uploads (a 1024x100 latent batch: ~3-7 ms of host time per call); this is one dispatch. Same seed, same values.
 */
class RandomNormalProgram implements WebGpuProgram {
  variableNames: string[] = [];
  outputShape: number[];
  shaderKey = 'gantryRandomNormal';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  uniforms = 'seedLo : u32, seedHi : u32, mean : f32, stddev : f32,';
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(tf.util.sizeFromShape(shape) / 256), 1, 1];
  }

  getUserCode(): string {
    return `
      fn pcgHash(v : u32) -> u32 {
        let state = v * 747796405u + 2891336453u;
        let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
        return (word >> 22u) ^ word;
      }
      fn main(index : i32) {
        if (index < uniforms.size) {
          let i = u32(index);
          let a = pcgHash(pcgHash(2u * i) ^ uniforms.seedLo) ^ pcgHash(uniforms.seedHi + i);
          let b = pcgHash(pcgHash(2u * i + 1u) ^ uniforms.seedHi) ^ pcgHash(uniforms.seedLo + i);
          let u1 = (f32(a >> 8u) + 0.5) / 16777216.0;
          let u2 = f32(b >> 8u) / 16777216.0;
          let z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
          setOutputAtIndex(index, uniforms.mean + uniforms.stddev * z);
        }
      }
    `;
  }
}

export const GANTRY_RANDOM_NORMAL = 'GantryRandomNormal';

function randomNormalKernel(args: { backend: unknown; attrs?: tf.NamedAttrMap }): Info {
  const backend = args.backend as WebGpuBackendInternals;
  const { shape, mean, stdDev, seed } = args.attrs as unknown as { shape: number[]; mean: number; stdDev: number; seed: number };
  const s = Math.floor(Math.abs(seed)) % 2 ** 52;
  return backend.runWebGPUProgram(new RandomNormalProgram(shape), [], 'float32', [
    { type: 'uint32', data: [s % 2 ** 32] },
    { type: 'uint32', data: [Math.floor(s / 2 ** 32)] },
    { type: 'float32', data: [mean] },
    { type: 'float32', data: [stdDev] },
  ]);
}

/**
 * Normal random numbers drawn on the GPU when the webgpu backend is active (Gantry's kernels registered), else
 * tf.randomNormal. The GPU stream differs from tf.randomNormal's for the same seed; each is reproducible.
 */
export function randomNormalFast(shape: number[], mean = 0, stdDev = 1, seed?: number): tf.Tensor {
  if (tf.getBackend() !== 'webgpu' || tf.getKernel(GANTRY_RANDOM_NORMAL, 'webgpu') == null) {
    return tf.randomNormal(shape, mean, stdDev, 'float32', seed);
  }
  const s = seed ?? Math.floor(Math.random() * 2 ** 52);
  return tf.engine().runKernel(GANTRY_RANDOM_NORMAL, {}, { shape, mean, stdDev, seed: s }) as tf.Tensor;
}

/**
 * AddN over any number of inputs with a kernel that takes at most `maxInputs`: stock WebGPU AddN binds every input as
 * a storage buffer and fails validation past the device's per-stage limit (gradients summed from 8+ consumers, as in
 * progressive growing's fade-in). Partial sums are freed once the final sum is enqueued.
 */
export function addNInChunks(inputs: Info[], maxInputs: number, add: (chunk: Info[]) => Info, free: (t: Info) => void): Info {
  const partials: Info[] = [];
  let level = inputs;
  while (level.length > maxInputs) {
    const next: Info[] = [];
    for (let i = 0; i < level.length; i += maxInputs) {
      const chunk = level.slice(i, i + maxInputs);
      if (chunk.length === 1) next.push(chunk[0]);
      else {
        const partial = add(chunk);
        partials.push(partial);
        next.push(partial);
      }
    }
    level = next;
  }
  const sum = add(level);
  for (const partial of partials) free(partial);
  return sum;
}

// ------------------------------------------------------------------------------------------------ registration

const MARK = Symbol.for('gantry.webgpu.kernel');
type MarkedConfig = tf.KernelConfig & { [MARK]?: true };

function replaceKernel(kernelName: string, make: (stock: tf.KernelFunc | undefined) => tf.KernelFunc): boolean {
  const existing = tf.getKernel(kernelName, 'webgpu') as MarkedConfig | undefined;
  if (existing?.[MARK]) return false;
  const stock = existing?.kernelFunc;
  if (existing) tf.unregisterKernel(kernelName, 'webgpu');
  const config: MarkedConfig = { kernelName, backendName: 'webgpu', kernelFunc: make(stock), [MARK]: true };
  tf.registerKernel(config);
  return true;
}

let fixedBackend: object | undefined;

/**
 * Registers Gantry's webgpu kernels (idempotent) and installs the backend fixes on the active webgpu backend.
 * Returns the names of what it installed, for the start-up report.
 */
/** Parts of registerWebGpuKernels that can be left out (for measuring each one's effect). */
export const WEBGPU_PARTS = ['upload', 'readSync', 'layouts', 'filterGrad', 'addN', 'adam', 'gradients', 'rng'] as const;
export type WebGpuPart = (typeof WEBGPU_PARTS)[number];

export function registerWebGpuKernels(skip: readonly WebGpuPart[] = []): string[] {
  const backend = tf.findBackend('webgpu');
  if (!internalsPresent(backend)) return [];
  const on = (part: WebGpuPart) => !skip.includes(part);
  const installed: string[] = [];
  if (fixedBackend !== backend) {
    if (on('upload')) installUploadFix(backend);
    if (on('readSync')) installReadSyncMessage(backend);
    if (on('layouts')) installBindGroupLayoutCache();
    fixedBackend = backend;
  }
  if (on('upload')) installed.push('upload:writeBuffer');
  if (on('layouts')) installed.push('bindGroupLayout:cache');
  if (on('filterGrad')) {
    replaceKernel(tf.Conv2DBackpropFilter, (stock) => (args) => {
      const { x, dy } = args.inputs as { x: Info; dy: Info };
      const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') {
        if (!stock) throw new Error('Gantry webgpu: no stock Conv2DBackpropFilter to fall back to');
        return stock(args);
      }
      return conv2dBackpropFilterWebGpu(args.backend as WebGpuBackendInternals, x, dy, attrs);
    });
    installed.push(tf.Conv2DBackpropFilter);
  }
  if (on('addN')) {
    replaceKernel(tf.AddN, (stock) => (args) => {
      if (!stock) throw new Error('Gantry webgpu: no stock AddN to chunk');
      const gpu = args.backend as WebGpuBackendInternals;
      // One storage buffer per input plus the output; stock AddN binds them all at once.
      const maxInputs = Math.max(2, gpu.device.limits.maxStorageBuffersPerShaderStage - 1);
      return addNInChunks(args.inputs as unknown as Info[], maxInputs, (chunk) => stock({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as Info, (t) => gpu.disposeData(t.dataId));
    });
    installed.push(`${tf.AddN}:chunked`);
  }
  if (on('adam')) {
    if (tf.getKernel(GANTRY_ADAM, 'webgpu') == null) {
      tf.registerKernel({ kernelName: GANTRY_ADAM, backendName: 'webgpu', kernelFunc: adamKernel as unknown as tf.KernelFunc });
    }
    installFusedAdam();
    installed.push('AdamOptimizer:fused');
  }
  if (on('gradients')) {
    registerNestedGradientFixes();
    installed.push('Sum/Mean gradients:broadcast');
  }
  if (on('rng')) {
    if (tf.getKernel(GANTRY_RANDOM_NORMAL, 'webgpu') == null) {
      tf.registerKernel({
        kernelName: GANTRY_RANDOM_NORMAL,
        backendName: 'webgpu',
        kernelFunc: randomNormalKernel as unknown as tf.KernelFunc,
      });
    }
    installed.push(GANTRY_RANDOM_NORMAL);
  }
  return installed;
}
