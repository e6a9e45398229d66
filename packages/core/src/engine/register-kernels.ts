import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilter, conv2dBackpropInput } from './conv-kernels.js';
import { withRunner } from './kernel-runner.js';
import { batchMatMulConfig, fusedMatMulConfig } from './matmul-kernels.js';
import { identityConfig, tileConfig } from './data-kernels.js';

/** Backends for which Gantry has composite kernels. */
export type EngineKernelBackend = 'wasm' | 'cpu';

/** Which Gantry kernels replace or add to a backend's own; recorded so that callers (bench, docs) can say so. */
export interface EngineKernelReport {
  backend: string;
  added: string[];
  replaced: string[];
}

const MARK = Symbol.for('gantry.engine.kernel');
const registeredFor = new Map<string, EngineKernelReport>();

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

/**
 * Registers Gantry's composite kernels for `backendName` (idempotent). On wasm: Conv2DBackpropFilter (missing),
 * Conv2DBackpropInput (naive in stock), and BatchMatMul/_FusedMatMul wrappers that route transposed and batched
 * products to XNNPACK. On cpu: the two conv gradients (stock ones are loop nests with poor locality).
 */
export function registerEngineKernels(backendName: EngineKernelBackend): EngineKernelReport {
  const done = registeredFor.get(backendName);
  if (done) return done;
  const report: EngineKernelReport = { backend: backendName, added: [], replaced: [] };
  for (const config of convKernels(backendName)) install(report, config);
  if (backendName === 'wasm') {
    const bmm = tf.getKernel(tf.BatchMatMul, 'wasm');
    if (bmm) install(report, batchMatMulConfig(bmm));
    const fmm = tf.getKernel(tf._FusedMatMul, 'wasm');
    if (fmm) install(report, fusedMatMulConfig(fmm));
    const tile = tf.getKernel(tf.Tile, 'wasm');
    if (tile) install(report, tileConfig(tile));
    const identity = tf.getKernel(tf.Identity, 'wasm');
    if (identity) install(report, identityConfig(identity));
  }
  registeredFor.set(backendName, report);
  return report;
}
