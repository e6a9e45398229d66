import * as path from 'node:path';
import { checkOptions, type GantryPlugin } from '@gantry/core';
import { diagnostics, type DiagnosticsOptions } from './diagnostics.js';
import { metricsLog } from './metrics-log.js';
import { progressBar } from './progress.js';
import { htmlReport } from './report.js';
import { sampleGrid } from './sample-grid.js';
import { tensorboard } from './tensorboard.js';
import { wandb, type WandbOptions } from './wandb.js';

export interface MonitorOptions {
  /** The run folder (metrics.jsonl, samples/, events.out.tfevents.*, wandb-spool/, report.html). */
  runDir: string;
  /** Plain progress lines instead of a live bar (default: when stderr is not a TTY). */
  quiet?: boolean;
  /** Sample grid every N steps; default 500. */
  sampleEvery?: number;
  /** Write TensorBoard event files into the run folder. Default false. */
  tensorboard?: boolean;
  /** Log to W&B (true: settings from WANDB_* variables). Default false. */
  wandb?: boolean | Omit<WandbOptions, 'dir'>;
  /** Write report.html. Default true. */
  report?: boolean;
  /** Rewrite report.html every N steps; default 1000. */
  reportEvery?: number;
  /** Diagnostics options, or false to switch them off. */
  diagnostics?: boolean | DiagnosticsOptions;
  /** Progress output stream; default process.stderr. */
  stream?: NodeJS.WritableStream;
}

/**
 * Everything a run folder needs, in one call: diagnostics, metrics.jsonl, fixed-noise sample grids, optional
 * TensorBoard and W&B, the HTML report and the progress bar. The plugins declare the order that matters themselves
 * (diagnostics' step listener runs `pre`, so alerts are logged with the step that raised them; the report's final
 * write is a `post` teardown), so they may be listed in any order among the user's plugins.
 */
export function monitorPlugins(options: MonitorOptions): GantryPlugin[] {
  checkOptions('monitorPlugins', options, [
    'runDir',
    'quiet',
    'sampleEvery',
    'tensorboard',
    'wandb',
    'report',
    'reportEvery',
    'diagnostics',
    'stream',
  ]);
  const dir = options.runDir;
  const plugins: GantryPlugin[] = [];
  if (options.diagnostics !== false) plugins.push(diagnostics(typeof options.diagnostics === 'object' ? options.diagnostics : {}));
  plugins.push(metricsLog({ file: path.join(dir, 'metrics.jsonl') }));
  plugins.push(sampleGrid({ dir: path.join(dir, 'samples'), every: options.sampleEvery ?? 500 }));
  if (options.tensorboard) plugins.push(tensorboard({ dir }));
  if (options.wandb) plugins.push(wandb({ ...(typeof options.wandb === 'object' ? options.wandb : {}), dir }));
  if (options.report !== false) plugins.push(htmlReport({ dir, every: options.reportEvery ?? 1000 }));
  plugins.push(progressBar({ quiet: options.quiet, stream: options.stream }));
  return plugins;
}
