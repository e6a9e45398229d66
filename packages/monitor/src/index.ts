export { crc32c, maskCrc, unmaskCrc } from './tensorboard/crc32c.js';
export { EventFileWriter, type EventFileWriterOptions } from './tensorboard/writer.js';
export { encodeImageGrid, encodeScatterPlot, writeImageGrid, type EncodedImage, type GridOptions, type ScatterOptions } from './images.js';
export { Spool, SPOOL_DIR, type SpoolProgress, type SpoolRunInfo } from './wandb/spool.js';
export {
  WandbSender,
  WandbRequestError,
  UPSERT_BUCKET,
  CREATE_RUN_FILES,
  isRetryableStatus,
  backoffDelay,
  type RetryOptions,
} from './wandb/protocol.js';
export {
  WandbRun,
  syncRun,
  drainSpool,
  resolveWandbSettings,
  newRunId,
  type WandbRunOptions,
  type WandbSettings,
  type SyncOptions,
  type SyncResult,
} from './wandb/run.js';
