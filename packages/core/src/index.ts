// The Node entry: the browser entry plus files. Checkpoint locations given as strings are folders.
import { setCheckpointLocations } from './checkpoint.js';
import { fileCheckpoints, findCheckpointFolder } from './checkpoint-files.js';

export * from './browser.js';
export {
  saveModel,
  readModelArtifacts,
  resolveCheckpointDir,
  listCheckpointSteps,
  fileCheckpoints,
  findCheckpointFolder,
} from './checkpoint-files.js';
export { acquireRunLock, RUN_LOCK_FILE, type RunLock } from './run-lock.js';
export { removeTempLeftovers, tempName } from './temp-files.js';
export { DiskFullError, isDiskFull, freeBytes, writeOrExplain } from './disk-full.js';
export { registerNestedGradientFixes, untapedKernel, timesStep, tapeRecording, LEAKY_RELU_GRAD_KERNEL } from './gradients.js';
export { encodeNpy, decodeNpy, npyHeader, writeNpy, readNpy, NpyRowWriter, type NpyArray } from './npy.js';

setCheckpointLocations({ store: fileCheckpoints, find: findCheckpointFolder });
