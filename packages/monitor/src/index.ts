import './events.js';

// What a page can use too: diagnostics, detectors, charts.
export * from './browser.js';

// Plugins (what the CLI composes).
export { progressBar, formatDuration, type ProgressBarOptions } from './plugins/progress.js';
export { metricsLog, type MetricsLogOptions } from './plugins/metrics-log.js';
export { sampleGrid, type SampleGridOptions } from './plugins/sample-grid.js';
export { tensorboard, type TensorBoardOptions } from './plugins/tensorboard.js';
export { wandb, type WandbOptions } from './plugins/wandb.js';
export { htmlReport, type HtmlReportOptions } from './plugins/report.js';
export { monitorPlugins, type MonitorOptions } from './plugins/bundle.js';

// Pure helpers.
export {
  encodeImageGrid,
  encodeScatterPlot,
  writeImageGrid,
  type EncodedImage,
  type GridOptions,
  type ScatterOptions,
} from './images.js';
export { parseMetricsLog, readMetricsLog, type MetricsLog, type StepRow, type EvalRow, type AlertRow } from './metrics-file.js';
export { renderReport, writeReport, listSamples, type ReportData, type ReportSample, type WriteReportOptions } from './report/render.js';

// TensorBoard event files.
export { crc32c, maskCrc, unmaskCrc } from './tensorboard/crc32c.js';
export { EventFileWriter, type EventFileWriterOptions } from './tensorboard/writer.js';
export { encodeFileVersionEvent, encodeSummaryEvent, frameRecord, FILE_VERSION, type ImageSummary, type SummaryValue } from './tensorboard/events.js';

// W&B client.
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
