export { Trainer, type TrainerOptions, type TrainResult, type CheckpointOptions } from './trainer.js';
export {
  definePlugin,
  scheduleMatches,
  unpackScheduled,
  type GantryPlugin,
  type Hooks,
  type HookName,
  type HookContext,
  type LossContext,
  type Phase,
  type Schedule,
  type PluginState,
  type PluginStateSnapshot,
  type EventListeners,
} from './plugin.js';
export { EventBus, type GantryEvents, type EventName, type Listener, type AlertSeverity } from './events.js';
export {
  minimax,
  nonSaturating,
  hinge,
  leastSquares,
  rpgan,
  relativisticAverage,
  bceWithLogits,
  standardLosses,
  type GanLoss,
} from './losses.js';
export { isDataSource, type Batch, type BatchOptions, type DataSource, type DataInput } from './data.js';
export { Rng, withSeed, type RngState } from './random.js';
export { GantryError, NonFiniteLossError, PluginError, checkOptions } from './errors.js';
export { NonFiniteWeightsError, WeightsDivergedError } from './finite-guard.js';
export {
  saveModel,
  readModelArtifacts,
  resolveCheckpointDir,
  stepFolderName,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
} from './checkpoint.js';
export { acquireRunLock, RUN_LOCK_FILE, type RunLock } from './run-lock.js';
export { removeTempLeftovers, tempName } from './temp-files.js';
export { DiskFullError, isDiskFull, freeBytes, writeOrExplain } from './disk-full.js';
export { registerNestedGradientFixes } from './gradients.js';
export { encodeNpy, decodeNpy, npyHeader, writeNpy, readNpy, NpyRowWriter, type NpyArray } from './npy.js';
