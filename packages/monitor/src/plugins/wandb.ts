import * as path from 'node:path';
import { checkOptions, definePlugin, type Trainer } from '@gantry/core';
import type { RetryOptions } from '../wandb/protocol.js';
import { newRunId, WandbRun } from '../wandb/run.js';
import '../events.js';
import { emitAlert } from './util.js';

export interface WandbOptions {
  project?: string;
  entity?: string;
  /** Display name of the run. */
  runName?: string;
  baseUrl?: string;
  apiKey?: string;
  /** Run folder; the spool lives in `<dir>/wandb-spool/`. Default `runs/wandb-<id>`. */
  dir?: string;
  /** Hyperparameters shown as the W&B run config. */
  config?: Record<string, unknown>;
  /** Log step scalars every N steps; default 1. */
  every?: number;
  flushIntervalMs?: number;
  timeoutMs?: number;
  retry?: RetryOptions;
  /** How long the end of the run may wait for unsent data; default 30 000 ms. */
  finishTimeoutMs?: number;
}

const KEYS = [
  'project',
  'entity',
  'runName',
  'baseUrl',
  'apiKey',
  'dir',
  'config',
  'every',
  'flushIntervalMs',
  'timeoutMs',
  'retry',
  'finishTimeoutMs',
] as const;

/**
 * Logs the run to Weights & Biases (or a compatible server): step scalars, eval metrics as `eval/<name>`, sample
 * images, summary, and completion with the exit code. Settings fall back to WANDB_API_KEY, WANDB_BASE_URL,
 * WANDB_ENTITY and WANDB_PROJECT. Training never waits for the network: rows are spooled to disk and sent in the
 * background; failures become `alert` events (kind `wandb`) and the data stays for `gantry wandb sync <run-dir>`.
 */
export function wandb(options: WandbOptions = {}) {
  checkOptions('wandb', options, KEYS);
  const every = options.every ?? 1;
  let run: WandbRun | undefined;
  let exitcode = 0;
  const warnings: string[] = [];

  const flushWarnings = async (trainer: Trainer) => {
    // The progress bar prints alerts; print here only when nothing else will.
    const printed = trainer.plugins.some((p) => p.name === 'progress');
    for (const message of warnings.splice(0)) {
      if (!printed) console.warn(message);
      await emitAlert(trainer, { step: trainer.step, kind: 'wandb', severity: 'warning', message });
    }
  };

  return definePlugin({
    name: 'wandb',
    on: {
      'run:start': ({ trainer }) => {
        if (run) return;
        exitcode = 0;
        const { every: _every, ...rest } = options;
        run = new WandbRun({
          ...rest,
          dir: options.dir ?? path.join('runs', `wandb-${newRunId()}`),
          // Warnings arrive from the background loop; they are reported at the next step, on the training side.
          onWarning: (m) => warnings.push(m),
          config: options.config ?? { steps: trainer.totalSteps, nCritic: trainer.nCritic, loss: trainer.loss.name, batchSize: trainer.batchSize },
        });
        return flushWarnings(trainer);
      },
      'step:end': async ({ step, scalars }, trainer) => {
        if (step % every === 0) run?.log(step, scalars);
        if (warnings.length) await flushWarnings(trainer);
      },
      eval: ({ step, metrics }) => run?.log(step, Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`eval/${k}`, v]))),
      'monitor:samples': ({ step, png, width, height }) => run?.logImage(step, 'samples', png, { width, height }),
      'run:end': ({ reason }) => {
        exitcode = reason === 'error' ? 1 : 0;
      },
    },
    hooks: {
      teardown: async () => {
        if (!run) return;
        const current = run;
        run = undefined;
        await current.finish(exitcode);
        // The run is over: print what went wrong; an alert now would reach listeners that already closed.
        for (const message of warnings.splice(0)) console.warn(message);
      },
    },
  });
}
