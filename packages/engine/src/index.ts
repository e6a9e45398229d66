export {
  useBackend,
  BACKEND_NAMES,
  type BackendName,
  type BackendChoice,
  type UseBackendOptions,
} from './backend.js';
// What a page can use too: kernels, the leaky-ReLU gradient, reference models.
export * from './browser.js';
export {
  runBench,
  kernelFlops,
  BENCH_LOSSES,
  type BenchOptions,
  type BenchResult,
  type BenchLoss,
  type KernelProfileRow,
} from './bench.js';
export { initWebGpu, GANTRY_WEBGPU_FLAGS, type WebGpuOptions, type WebGpuInfo } from './webgpu.js';
export { randomNormalFast, WEBGPU_PARTS, type WebGpuPart } from './webgpu-kernels.js';
export { setupTensorflow, DEFAULT_TENSORFLOW_VERSION, type SetupTensorflowOptions, type SetupTensorflowResult } from './native/setup.js';
export { verifyNativeBuild, compareWithCpu, NATIVE_TOLERANCE, type NativeCheck } from './native/verify.js';
export { gantryCacheDir, nativeInstallDir, NATIVE_PACKAGES, type NativeFlavour, type NativeManifest } from './native/paths.js';
export { SETUP_HINT, nativeTensorflowInstalled } from './native/load.js';
export { captureSteps, type StepCapture, type StepCaptureOptions, type StepCaptureStats } from './native/graph-capture.js';
