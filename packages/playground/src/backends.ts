import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { registerNestedGradientFixes } from '@gantry/core';
import { registerEngineKernels, registerLazyFusedGradients, registerOffTapeLeakyReluGradient, startWasmFmaConv } from '@gantry/engine';

export type PageBackend = 'webgpu' | 'webgl' | 'wasm';

// The wasm binaries are bundled with the page (Vite copies them), never fetched from a CDN.
setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd,
});

function hasWebGl2(): boolean {
  try {
    return document.createElement('canvas').getContext('webgl2') !== null;
  } catch {
    return false;
  }
}

/** The backends this browser can run, best first: WebGPU when it has an adapter, then WebGL 2, then wasm. */
export async function availableBackends(): Promise<PageBackend[]> {
  const found: PageBackend[] = [];
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (gpu && (await gpu.requestAdapter().catch(() => null))) found.push('webgpu');
  if (hasWebGl2()) found.push('webgl');
  found.push('wasm');
  return found;
}

/**
 * Switches tfjs to `name` and registers what @gantry/engine's useBackend registers in Node (nested-gradient fixes,
 * the off-tape leaky-ReLU gradient, on wasm the composite kernels that make convnets train and the FMA convolution,
 * last the fused ops' per-input gradients), so a page computes what Node computes.
 */
export async function useBackend(name: PageBackend): Promise<void> {
  tf.enableProdMode();
  registerNestedGradientFixes();
  registerOffTapeLeakyReluGradient();
  if (!(await tf.setBackend(name))) throw new Error(`The ${name} backend could not be initialized in this browser`);
  await tf.ready();
  if (name === 'wasm') {
    registerEngineKernels('wasm');
    // Node's wasm convolution (relaxed-SIMD FMA), so a page computes what Node computes, bit for bit.
    startWasmFmaConv();
  }
  registerLazyFusedGradients();
}
