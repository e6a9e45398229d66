// The browser entry: the kernels and gradients a page registers for its backend, and the reference models. Backend
// selection (useBackend: native TensorFlow, Dawn, the wasm loader's Node paths), WebGPU setup and the benchmark are
// Node-only.
export { registerOffTapeLeakyReluGradient } from './leaky-relu-gradient.js';
export { registerLazyFusedGradients } from './lazy-fused-gradients.js';
export {
  registerEngineKernels,
  type EngineKernelBackend,
  type EngineKernelReport,
  type EngineKernelSet,
} from './register-kernels.js';
export { startWasmFmaConv, wasmConvolution } from './wasm-simd/simd-conv.js';
export { referenceGenerator, referenceDiscriminator, REFERENCE_LATENT_DIM, REFERENCE_IMAGE_SHAPE } from './reference-models.js';
