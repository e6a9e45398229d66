export {
  useBackend,
  BACKEND_NAMES,
  type BackendName,
  type BackendChoice,
  type UseBackendOptions,
} from './backend.js';
export { registerZeroGradients } from './gradients.js';
export { registerEngineKernels, type EngineKernelBackend, type EngineKernelReport } from './register-kernels.js';
export {
  referenceGenerator,
  referenceDiscriminator,
  REFERENCE_LATENT_DIM,
  REFERENCE_IMAGE_SHAPE,
} from './reference-models.js';
export {
  runBench,
  kernelFlops,
  BENCH_LOSSES,
  type BenchOptions,
  type BenchResult,
  type BenchLoss,
  type KernelProfileRow,
} from './bench.js';
