import * as fs from 'node:fs';

/** A step row of metrics.jsonl: `{ step, time, ...scalars }` (time in unix seconds). */
export interface StepRow {
  step: number;
  time: number;
  [scalar: string]: number;
}

export interface EvalRow {
  step: number;
  time?: number;
  metrics: Record<string, number>;
}

export interface AlertRow {
  step: number;
  time?: number;
  alert: string;
  severity: 'info' | 'warning' | 'error';
  message: string;
  value?: number;
  threshold?: number;
}

export interface MetricsLog {
  steps: StepRow[];
  evals: EvalRow[];
  alerts: AlertRow[];
}

const NON_METRIC = new Set(['step', 'time', 'kind']);

/**
 * Parses metrics.jsonl. A resumed run appends rows for steps it repeats; the latest row of a step wins so the
 * curves show the run that continued. Unparseable lines (a torn last line after a crash) are skipped.
 */
export function parseMetricsLog(text: string): MetricsLog {
  const steps = new Map<number, StepRow>();
  const evals = new Map<string, EvalRow>();
  const alerts: AlertRow[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let row: any;
    try {
      row = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof row?.step !== 'number') continue;
    if (row.kind === 'alert') {
      alerts.push(row as AlertRow);
    } else if (row.kind === 'eval') {
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(row)) if (!NON_METRIC.has(k) && typeof v === 'number') metrics[k] = v;
      const prev = evals.get(String(row.step));
      evals.set(String(row.step), { step: row.step, time: row.time, metrics: { ...prev?.metrics, ...metrics } });
    } else if (row.kind === undefined) {
      const out: StepRow = { step: row.step, time: row.time };
      for (const [k, v] of Object.entries(row)) if (!NON_METRIC.has(k)) out[k] = typeof v === 'number' ? v : NaN;
      steps.set(row.step, out);
    }
  }
  const byStep = (a: { step: number }, b: { step: number }) => a.step - b.step;
  return { steps: [...steps.values()].sort(byStep), evals: [...evals.values()].sort(byStep), alerts };
}

export function readMetricsLog(file: string): MetricsLog {
  return fs.existsSync(file) ? parseMetricsLog(fs.readFileSync(file, 'utf8')) : { steps: [], evals: [], alerts: [] };
}
