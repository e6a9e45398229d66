import * as tf from '@tensorflow/tfjs-core';
import { GantryError } from '@gantry/core';
import { canResolve, nodeRequire } from './node-require.js';
import { registerWebGpuKernels, type WebGpuPart } from './webgpu-kernels.js';

/**
 * WebGPU in Node: Dawn (the `webgpu` package, Vulkan on Linux) under @tensorflow/tfjs-backend-webgpu, with the flags
 * and kernels that make GAN training steps fast on it. Both packages are optional peers: CPU users never install them.
 */

/** Flags Gantry sets before the backend starts (measured on an H100; see ENGINE.md, "GPU"). */
export const GANTRY_WEBGPU_FLAGS: Readonly<Record<string, number | boolean>> = {
  // None at present. WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false (the matmul conv2dTranspose) was one, until an H100
  // profile showed its Conv2DBackpropInput 2.5x slower than the naive one (69 vs 27 ms per WGAN-GP step at batch 1024).
};

export interface WebGpuOptions {
  /** tfjs flags set before the backend starts, on top of GANTRY_WEBGPU_FLAGS (stock: pass `stock: true`). */
  flags?: Record<string, number | boolean>;
  /** Stock tfjs-backend-webgpu: no Gantry flags, no Gantry kernels (for comparisons). */
  stock?: boolean;
  /** Register Gantry's WebGPU kernels and fixes (default true unless `stock`). */
  kernels?: boolean;
  /** Leave out some of them, to measure each one's effect (see WEBGPU_PARTS). */
  skip?: WebGpuPart[];
  /** Accept a software adapter (llvmpipe, SwiftShader); default false, since it is slower than the wasm backend. */
  allowFallbackAdapter?: boolean;
  /** Ask the device for timestamp queries, so tf.profile/tf.time report kernel times (default false). */
  timestampQuery?: boolean;
  /** Dawn options for `create()`, e.g. `['backend=vulkan']` or `['adapter=NVIDIA H100 80GB HBM3']`. */
  dawnOptions?: string[];
}

export interface WebGpuInfo {
  /** Adapter description, e.g. "nvidia hopper NVIDIA H100 80GB HBM3". */
  adapter: string;
  fallback: boolean;
  /** Gantry kernels registered for webgpu. */
  kernels: string[];
  flags: Record<string, number | boolean>;
}

export type WebGpuAttempt = { ok: true; detail: string } | { ok: false; reason: string };

/** The parts of the environment initWebGpu touches, injectable so the error paths can be tested on any machine. */
export interface WebGpuEnvironment {
  platform: NodeJS.Platform;
  canResolve: (specifier: string) => boolean;
  /** Throws with the dynamic loader's message when the library cannot be loaded. */
  dlopen: (library: string) => void;
}

const INSTALL_HINT = 'install the optional packages webgpu and @tensorflow/tfjs-backend-webgpu';

function defaultEnvironment(): WebGpuEnvironment {
  return {
    platform: process.platform,
    canResolve,
    dlopen: (library) => process.dlopen({ exports: {} } as NodeJS.Module, library),
  };
}

/**
 * What stops WebGPU before Dawn is even asked for an adapter, or undefined. Dawn itself only prints "Couldn't load
 * Vulkan" to stderr and returns no adapter, so the Vulkan loader is probed first with the same dlopen call it makes.
 */
export function webGpuPrerequisiteError(
  env: WebGpuEnvironment = defaultEnvironment(),
  dawnOptions: readonly string[] = [],
): string | undefined {
  const missing = ['webgpu', '@tensorflow/tfjs-backend-webgpu'].filter((p) => !env.canResolve(p));
  if (missing.length > 0) return `WebGPU backend unavailable (${missing.join(' and ')} not found): ${INSTALL_HINT}`;
  // Dawn on Linux runs on Vulkan unless told otherwise (backend=null is Dawn's no-op backend, for overhead tests).
  const dawnBackend = dawnOptions.find((o) => o.startsWith('backend='));
  if (env.platform === 'linux' && (dawnBackend === undefined || dawnBackend === 'backend=vulkan')) {
    try {
      env.dlopen('libvulkan.so.1');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // A loadable library that is not a Node addon fails later ("did not self-register"): the loader is there.
      if (/cannot open shared object|no such file/i.test(message)) {
        return 'WebGPU backend unavailable: no Vulkan loader (libvulkan.so.1) found; install libvulkan1 and the GPU driver (its Vulkan ICD)';
      }
    }
  }
  return undefined;
}

interface DawnAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface DawnAdapter {
  info?: DawnAdapterInfo;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: object): Promise<unknown>;
}
interface DawnGpu {
  requestAdapter(options?: object): Promise<DawnAdapter | null>;
}
interface WebGpuBackendModule {
  WebGPUBackend: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;
}

function describeAdapter(info: DawnAdapterInfo | undefined): string {
  if (!info) return 'unnamed adapter';
  const parts = [info.vendor, info.architecture, info.description || info.device].filter((p) => p && p.length > 0);
  return parts.length > 0 ? parts.join(' ') : 'unnamed adapter';
}

let started: WebGpuInfo | undefined;

/**
 * Starts tfjs's webgpu backend on Dawn and makes it the active backend. Throws a one-line GantryError when the packages
 * are missing, when the Vulkan loader is missing, or when Dawn finds no (hardware) adapter. Idempotent.
 */
export async function initWebGpu(options: WebGpuOptions = {}): Promise<WebGpuInfo> {
  if (started && tf.findBackend('webgpu') != null) {
    await tf.setBackend('webgpu');
    return started;
  }
  const prerequisite = webGpuPrerequisiteError(defaultEnvironment(), options.dawnOptions);
  if (prerequisite) throw new GantryError(prerequisite);

  const { create, globals } = (await import('webgpu')) as unknown as {
    create: (options: string[]) => DawnGpu;
    globals: Record<string, unknown>;
  };
  // tfjs-backend-webgpu reads GPUBufferUsage, GPUBuffer etc. as globals and the GPU as navigator.gpu.
  Object.assign(globalThis, globals);
  const gpu = create(options.dawnOptions ?? []);
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });

  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new GantryError(
      'WebGPU backend unavailable: Dawn found no GPU adapter (Vulkan reported no usable driver; check the GPU driver\'s Vulkan ICD, e.g. VK_DRIVER_FILES)',
    );
  }
  const fallback = Boolean(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
  const name = describeAdapter(adapter.info);
  if (fallback && !options.allowFallbackAdapter) {
    throw new GantryError(`WebGPU backend: only a software adapter was found (${name}); the wasm backend is faster`);
  }

  const { WebGPUBackend } = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as WebGpuBackendModule;
  const flags: Record<string, number | boolean> = { ...(options.stock ? {} : GANTRY_WEBGPU_FLAGS), ...options.flags };
  for (const [flag, value] of Object.entries(flags)) tf.env().set(flag, value);

  // Our own factory: the device comes from the adapter probed above, with the adapter's full limits (large batches
  // need big storage buffers) and timestamp queries only when asked for, since they are for profiling.
  const limits = adapter.limits;
  const requiredLimits: Record<string, number> = {};
  for (const key of [
    'maxComputeWorkgroupStorageSize',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupSizeX',
    'maxComputeInvocationsPerWorkgroup',
    'maxStorageBuffersPerShaderStage',
  ]) {
    if (typeof limits[key] === 'number') requiredLimits[key] = limits[key];
  }
  const requiredFeatures =
    options.timestampQuery && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  // Replace the package's own factory (importing it registers one); findBackend would start that one instead.
  const factories = (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory;
  if (factories.webgpu != null) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 3);
  if (!(await tf.setBackend('webgpu'))) throw new GantryError('WebGPU backend failed to initialise');

  const kernels = (options.kernels ?? !options.stock) ? registerWebGpuKernels(options.skip) : [];
  started = { adapter: name, fallback, kernels, flags };
  return started;
}

/**
 * Asks Dawn for an adapter in a child process, so that `auto` backend selection stays quiet on machines without a
 * GPU: Dawn prints driver warnings straight to the process's stderr.
 */
async function probeAdapterQuietly(): Promise<string | undefined> {
  const [{ spawnSync }, { pathToFileURL }] = await Promise.all([import('node:child_process'), import('node:url')]);
  const entry = pathToFileURL(nodeRequire().resolve('webgpu')).href;
  const script =
    `const { create, globals } = await import(${JSON.stringify(entry)});` +
    'Object.assign(globalThis, globals);' +
    "const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });" +
    'process.stdout.write(JSON.stringify({ ok: !!a && !(a.info?.isFallbackAdapter ?? a.isFallbackAdapter) }));' +
    'process.exit(0);';
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  if (child.status !== 0) return `the adapter probe exited with ${child.status ?? child.signal}`;
  try {
    return (JSON.parse(child.stdout) as { ok: boolean }).ok ? undefined : 'no hardware WebGPU adapter found';
  } catch {
    return 'the adapter probe printed no result';
  }
}

/** For `auto` backend selection: starts WebGPU when it can, and says why not otherwise, without printing anything. */
export async function tryWebGpu(options: WebGpuOptions = {}): Promise<WebGpuAttempt> {
  const prerequisite = webGpuPrerequisiteError(defaultEnvironment(), options.dawnOptions);
  if (prerequisite) return { ok: false, reason: prerequisite };
  if (!started) {
    const probe = await probeAdapterQuietly();
    if (probe) return { ok: false, reason: probe };
  }
  try {
    const info = await initWebGpu(options);
    return { ok: true, detail: `Dawn adapter: ${info.adapter}` };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}
