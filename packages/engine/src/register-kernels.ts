import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilter, conv2dBackpropInput } from './conv-kernels.js';
import { withRunner } from './kernel-runner.js';
import { batchMatMulKernel, fusedMatMulKernel } from './matmul-kernels.js';
import { castKernel, fusedBatchNormKernel, identityKernel, leakyReluKernel, meanKernel, sumKernel, tileKernel } from './data-kernels.js';
import { installHostAdam } from './adam-host.js';
import { simdConvKernel } from './wasm-simd/simd-conv.js';

/** Backends for which Gantry has composite kernels. */
export type EngineKernelBackend = 'wasm' | 'cpu';

/** Which Gantry kernels replace or add to a backend's own; recorded so that callers (bench, docs) can say so. */
export interface EngineKernelReport {
  backend: string;
  added: string[];
  replaced: string[];
}

/**
 * `all`: every Gantry kernel for the backend (the default). `required`: only kernels the backend lacks entirely
 * (wasm: Conv2DBackpropFilter), i.e. stock tfjs made able to train; used to measure "before".
 */
export type EngineKernelSet = 'all' | 'required';

const MARK = Symbol.for('gantry.engine.kernel');
// Kept on globalThis: the kernel registry is global too, and a second copy of this module (ESM and CJS builds, or
// vitest's per-file module graphs) must see what the first one installed.
const REPORTS_KEY = Symbol.for('gantry.engine.kernel-reports');
const registeredFor: Map<string, EngineKernelReport> = ((globalThis as Record<symbol, unknown>)[REPORTS_KEY] ??=
  new Map()) as Map<string, EngineKernelReport>;

type KernelConfigMarked = tf.KernelConfig & { [MARK]?: true };

function install(report: EngineKernelReport, config: tf.KernelConfig): void {
  const existing = tf.getKernel(config.kernelName, config.backendName) as KernelConfigMarked | undefined;
  if (existing?.[MARK]) return;
  if (existing != null) {
    tf.unregisterKernel(config.kernelName, config.backendName);
    report.replaced.push(config.kernelName);
  } else {
    report.added.push(config.kernelName);
  }
  const marked: KernelConfigMarked = { ...config, [MARK]: true };
  tf.registerKernel(marked);
}

function convKernels(backendName: string): tf.KernelConfig[] {
  return [
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        withRunner(backend as tf.KernelBackend, backendName, (r) =>
          conv2dBackpropFilter(r, inputs.x!, inputs.dy!, attrs as unknown as tf.Conv2DBackpropFilterAttrs),
        ),
    },
    {
      kernelName: tf.Conv2DBackpropInput,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        withRunner(backend as tf.KernelBackend, backendName, (r) =>
          conv2dBackpropInput(r, inputs.dy!, inputs.filter!, attrs as unknown as tf.Conv2DBackpropInputAttrs),
        ),
    },
  ];
}

/** Stock kernels wrapped by Gantry on wasm: each builder returns a kernel function that may fall back to the stock one. */
const WASM_WRAPPERS: [string, (stock: tf.KernelConfig) => tf.KernelFunc][] = [
  [tf.BatchMatMul, batchMatMulKernel],
  [tf._FusedMatMul, fusedMatMulKernel],
  [tf.Tile, tileKernel],
  [tf.Identity, identityKernel],
  [tf.Cast, castKernel],
  [tf.LeakyRelu, leakyReluKernel],
  [tf.Sum, sumKernel],
  [tf.Mean, meanKernel],
  [tf.FusedBatchNorm, fusedBatchNormKernel],
  [tf.Conv2D, simdConvKernel],
  [tf.FusedConv2D, simdConvKernel],
];

/**
 * Registers Gantry's composite kernels for `backendName` (idempotent; the first call per backend decides the set).
 * On wasm: Conv2DBackpropFilter (missing in stock), Conv2DBackpropInput (naive in stock), BatchMatMul/_FusedMatMul
 * wrappers that keep transposed and batched products on XNNPACK, a block-copy Tile, a shared-buffer Identity and
 * same-dtype Cast, a LeakyRelu from Step and Multiply, Sum/Mean over leading axes as an average pooling, and
 * FusedBatchNorm as three element-wise passes.
 * On cpu: the two conv gradients (the stock ones are loop nests with poor locality).
 * On both (`all`): tf.train.adam's update with small weights in JavaScript and scalars uploaded once (adam-host.ts).
 */
export function registerEngineKernels(backendName: EngineKernelBackend, set: EngineKernelSet = 'all'): EngineKernelReport {
  const done = registeredFor.get(backendName);
  if (done) return done;
  const report: EngineKernelReport = { backend: backendName, added: [], replaced: [] };
  for (const config of convKernels(backendName)) {
    if (set === 'all' || tf.getKernel(config.kernelName, backendName) == null) install(report, config);
  }
  if (backendName === 'wasm' && set === 'all') {
    for (const [name, wrap] of WASM_WRAPPERS) {
      const stock = tf.getKernel(name, 'wasm');
      // The stock config's name, backend and setup/dispose functions stay; only the kernel function is replaced.
      if (stock) install(report, { ...stock, kernelFunc: wrap(stock) });
    }
  }
  if (set === 'all') {
    installHostAdam(backendName);
    report.replaced.push('AdamOptimizer update');
  }
  registeredFor.set(backendName, report);
  return report;
}
