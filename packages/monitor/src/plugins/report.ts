import * as path from 'node:path';
import { checkOptions, definePlugin, GantryError } from '@gantry/core';
import * as fs from 'node:fs';
import type { AlertRow, EvalRow, MetricsLog, StepRow } from '../metrics-file.js';
import { writeReport } from '../report/render.js';
import { onceWarner } from './util.js';

export interface HtmlReportOptions {
  /** Run folder: writes `<dir>/report.html`; reads `<dir>/metrics.jsonl` and `<dir>/samples/` when present. */
  dir: string;
  /** Also rewrite the report every N steps; default 1000 (0 = only at the end). */
  every?: number;
  /** metrics.jsonl to read; default `<dir>/metrics.jsonl`. Without that file, rows seen in this process are used. */
  metricsFile?: string;
  /** Sample grids folder; default `<dir>/samples`. */
  samplesDir?: string;
  title?: string;
  /** Sample grids in the timeline at most; default 24. */
  maxSamples?: number;
}

/**
 * Writes a self-contained `report.html` (no network: inline SVG charts, samples as data: URIs) at the end of the run
 * and every N steps: loss curves, gradient norms, loss terms, FID and other eval curves, a timeline of sample grids,
 * and the alerts.
 */
export function htmlReport(options: HtmlReportOptions) {
  checkOptions('htmlReport', options, ['dir', 'every', 'metricsFile', 'samplesDir', 'title', 'maxSamples']);
  if (!options?.dir) throw new GantryError('htmlReport needs a dir');
  const every = options.every ?? 1000;
  const metricsFile = options.metricsFile ?? path.join(options.dir, 'metrics.jsonl');
  const memory: MetricsLog = { steps: [], evals: [], alerts: [] };
  const warn = onceWarner('htmlReport');
  let total = 0;

  const write = () => {
    try {
      writeReport(options.dir, {
        metricsFile,
        samplesDir: options.samplesDir,
        title: options.title,
        maxSamples: options.maxSamples,
        log: fs.existsSync(metricsFile) ? undefined : memory,
        info: { 'total steps': total },
      });
    } catch (error) {
      warn('write', `could not write the report: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  return definePlugin({
    name: 'html-report',
    on: {
      'run:start': ({ totalSteps }) => {
        total = totalSteps;
      },
      'step:end': ({ step, scalars }) => {
        memory.steps.push({ step, time: Date.now() / 1000, ...scalars } as StepRow);
        if (every > 0 && step % every === 0) write();
      },
      eval: ({ step, metrics }) => {
        memory.evals.push({ step, metrics } as EvalRow);
      },
      alert: ({ step, kind, severity, message, value, threshold }) => {
        memory.alerts.push({ step, alert: kind, severity, message, value, threshold } as AlertRow);
      },
    },
    // After run:end listeners (which may add alerts) and other teardowns, so the final report has everything.
    hooks: { teardown: { order: 'post', handler: write } },
  });
}
