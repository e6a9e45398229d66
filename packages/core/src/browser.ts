// The browser entry: everything but files (checkpoint folders, .npy files). Checkpoint locations given as strings
// are IndexedDB prefixes here.
export {
  Trainer,
  type TrainerOptions,
  type TrainResult,
  type CheckpointOptions,
  type DiscriminatorUpdateOptions,
  type StepRunner,
} from './trainer.js';
export { StepScalars } from './step-scalars.js';
export { HOOK_KINDS, type HookKind } from './hooks.js';
export {
  definePlugin,
  scheduleMatches,
  unpackScheduled,
  type GantryPlugin,
  type Hooks,
  type HookName,
  type HookContext,
  type HookOrder,
  HOOK_NAMES,
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
export { Rng, RandomStreams, withSeed, type RngState, type RandomStreamsState } from './random.js';
export { randomNormal, normalValues, NORMAL_GENERATORS, type NormalGenerator } from './normal.js';
export { fastNormalValues } from './fast-normal.js';
export { GantryError, NonFiniteLossError, PluginError, checkOptions } from './errors.js';
export { NonFiniteWeightsError, WeightsDivergedError } from './finite-guard.js';
export {
  stepFolderName,
  setCheckpointLocations,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
  type CheckpointLocations,
} from './checkpoint.js';
export {
  indexedDbCheckpoints,
  CHECKPOINT_PARTS,
  type CheckpointStore,
  type CheckpointWriter,
  type CheckpointPart,
} from './checkpoint-store.js';
export { yieldToEventLoop } from './yield.js';
export { registerNestedGradientFixes, untapedKernel, timesStep, tapeRecording, LEAKY_RELU_GRAD_KERNEL } from './gradients.js';
export {
  MemberDense,
  stackMembers,
  stackMemberPairs,
  concatMembers,
  splitMembers,
  memberRows,
  memberEpsilon,
  toMemberAxis,
  fromMemberAxis,
} from './members.js';
