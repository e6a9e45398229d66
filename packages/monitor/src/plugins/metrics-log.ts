import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkOptions, definePlugin, GantryError, writeOrExplain } from '@gantry/core';

export interface MetricsLogOptions {
  /** The JSONL file, e.g. `<run>/metrics.jsonl`. */
  file: string;
  /** Write a step row every N steps; default 1. Eval and alert rows are always written. */
  every?: number;
}

/**
 * Appends one JSON object per line to `file`: step rows `{ step, time, ...scalars }`, eval rows
 * `{ step, time, kind: 'eval', ...metrics }` and alert rows `{ step, time, kind: 'alert', alert, severity,
 * message, value?, threshold? }` (time in unix seconds). The file is only ever appended to, so a resumed run keeps
 * every earlier row; readers take the latest row of a repeated step.
 */
export function metricsLog(options: MetricsLogOptions) {
  checkOptions('metricsLog', options, ['file', 'every']);
  if (!options?.file) throw new GantryError('metricsLog needs a file');
  const every = options.every ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new GantryError(`metricsLog option "every" must be a positive integer, got ${every}`);
  const file = options.file;
  const append = (row: Record<string, unknown>) => {
    const line = JSON.stringify(row) + '\n';
    const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
    writeOrExplain(file, Buffer.byteLength(line), 'the row', () => {
      try {
        fs.appendFileSync(file, line);
      } catch (error) {
        // A disk that fills mid-row leaves part of it: cut it off, so every line stays a whole row.
        fs.truncateSync(file, size);
        throw error;
      }
    });
  };
  const now = () => Date.now() / 1000;
  return definePlugin({
    name: 'metrics-log',
    on: {
      'run:start': () => {
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      },
      'step:end': {
        every,
        handler: ({ step, scalars }) => append({ step, time: now(), ...scalars }),
      },
      eval: ({ step, metrics }) => append({ step, time: now(), kind: 'eval', ...metrics }),
      alert: ({ step, kind, ...rest }) => append({ step, time: now(), kind: 'alert', alert: kind, ...rest }),
    },
  });
}
