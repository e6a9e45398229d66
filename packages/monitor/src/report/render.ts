import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { tempName } from '@gantry/core';
import { downsample } from '../charts/downsample.js';
import { LINE_CHART_CSS, mountLineChart, type ChartSpec, type Series } from '../charts/line-chart.js';
import { readMetricsLog, type MetricsLog } from '../metrics-file.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Points per series embedded in the report at most; longer series are averaged in buckets (hover shows the means). */
const MAX_CHART_POINTS = 4000;

let uplotAssets: { script: string; css: string } | undefined;
/** uPlot's browser build and stylesheet, inlined so the report works offline from one file. */
function uplotFiles(): { script: string; css: string } {
  if (!uplotAssets) {
    const require = createRequire(import.meta.url);
    const read = (file: string) => fs.readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
    uplotAssets = { script: read('uPlot.iife.min.js'), css: read('uPlot.min.css') };
  }
  return uplotAssets;
}

/** JSON that is safe inside a <script> element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

export interface ReportSample {
  step: number;
  /** PNG bytes. */
  png: Uint8Array;
}

export interface ReportData extends MetricsLog {
  title: string;
  samples: ReportSample[];
  /** Key/value facts shown at the top (run folder, total steps, …). */
  info?: Record<string, string | number>;
  generatedAt?: Date;
}

const LOSS_KEYS = ['d_loss', 'g_loss'];
const isGradNorm = (k: string) => /grad_norm/.test(k);
const isLossTerm = (k: string) => /^[DG]\//.test(k);

function seriesOf(rows: { step: number }[], key: string, get: (row: any) => unknown): Series {
  const points: [number, number][] = [];
  for (const row of rows) {
    const v = get(row);
    if (typeof v === 'number' && Number.isFinite(v)) points.push([row.step, v]);
  }
  return { key, points };
}

/** Picks at most `max` samples evenly, always keeping the first and the last. */
export function pickTimeline<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  if (max <= 1) return [items[items.length - 1]];
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * (items.length - 1)) / (max - 1))]);
  return out;
}

/**
 * A self-contained HTML report (one file, no network): inline CSS, uPlot charts with the chart module and data inlined
 * (hover values, drag to zoom), samples as data: URIs, and a one-line self-check that records how many sample images
 * the browser decoded (`data-images-decoded` on body). The charts are reachable as `window.gantryCharts[id]`.
 */
export function renderReport(data: ReportData): string {
  const steps = data.steps;
  const keys = new Set<string>();
  for (const row of steps) for (const k of Object.keys(row)) if (k !== 'step' && k !== 'time') keys.add(k);
  const charts: string[] = [];
  const specs: ChartSpec[] = [];
  const chart = (id: string, title: string, series: Series[]) => {
    if (series.every((s) => s.points.length === 0)) return;
    specs.push({ id, title, width: 640, series: series.map((s) => ({ key: s.key, points: downsample(s.points, MAX_CHART_POINTS) })) });
    charts.push(`<section class="chart-box"><div id="chart-${escapeHtml(id)}"></div></section>`);
  };
  chart('losses', 'Losses', LOSS_KEYS.filter((k) => keys.has(k)).map((k) => seriesOf(steps, k, (r) => r[k])));
  const gradKeys = [...keys].filter(isGradNorm).sort();
  chart('grad-norms', 'Gradient norms', gradKeys.map((k) => seriesOf(steps, k, (r) => r[k])));
  const termKeys = [...keys].filter((k) => isLossTerm(k) && !isGradNorm(k)).sort();
  chart('loss-terms', 'Loss terms', termKeys.map((k) => seriesOf(steps, k, (r) => r[k])));
  const other = [...keys].filter((k) => !LOSS_KEYS.includes(k) && !isGradNorm(k) && !isLossTerm(k)).sort();
  chart('other-scalars', 'Other reported scalars', other.slice(0, 10).map((k) => seriesOf(steps, k, (r) => r[k])));

  const evalKeys = new Set<string>();
  for (const e of data.evals) for (const k of Object.keys(e.metrics)) evalKeys.add(k);
  if (evalKeys.has('fid')) chart('fid', 'FID (lower is better)', [seriesOf(data.evals, 'fid', (e) => e.metrics.fid)]);
  for (const k of [...evalKeys].filter((k) => k !== 'fid').sort()) {
    chart(`eval-${k}`, `Evaluation: ${k}`, [seriesOf(data.evals, k, (e) => e.metrics[k])]);
  }

  const last = steps.at(-1);
  const fids = data.evals.filter((e) => Number.isFinite(e.metrics.fid));
  const best = fids.length ? fids.reduce((a, b) => (b.metrics.fid < a.metrics.fid ? b : a)) : undefined;
  const facts: Record<string, string | number> = {
    ...data.info,
    'last step': last?.step ?? 0,
    ...(last && Number.isFinite(last.d_loss) ? { 'last D loss': last.d_loss.toFixed(4) } : {}),
    ...(last && Number.isFinite(last.g_loss) ? { 'last G loss': last.g_loss.toFixed(4) } : {}),
    ...(best ? { 'best FID': `${best.metrics.fid.toFixed(3)} (step ${best.step})` } : {}),
    alerts: data.alerts.length,
  };
  if (steps.length >= 2 && Number.isFinite(steps[0].time) && Number.isFinite(last!.time) && last!.time > steps[0].time) {
    facts['mean speed'] = `${((last!.step - steps[0].step) / (last!.time - steps[0].time)).toFixed(2)} it/s`;
  }

  const samples = data.samples
    .map(
      (s) =>
        `<figure class="sample" data-step="${s.step}"><img alt="samples at step ${s.step}" src="data:image/png;base64,${Buffer.from(s.png).toString('base64')}"><figcaption>step ${s.step}</figcaption></figure>`,
    )
    .join('');
  const alerts = data.alerts.length
    ? `<table class="alerts"><thead><tr><th>step</th><th>severity</th><th>kind</th><th>message</th></tr></thead><tbody>${data.alerts
        .map(
          (a) =>
            `<tr class="alert ${escapeHtml(a.severity)}" data-kind="${escapeHtml(a.alert)}"><td>${a.step}</td><td>${escapeHtml(a.severity)}</td><td>${escapeHtml(a.alert)}</td><td>${escapeHtml(a.message)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="none">No alerts.</p>';

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:0}dt{color:#666}dd{margin:0}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart-box{background:#fff;border:1px solid #ddd;padding:6px}
${uplotFiles().css}${LINE_CHART_CSS}
.timeline{display:flex;flex-wrap:wrap;gap:12px}.sample{margin:0;background:#fff;border:1px solid #ddd;padding:6px}
.sample img{image-rendering:pixelated;width:240px;display:block}figcaption{text-align:center;color:#555}
table.alerts{border-collapse:collapse;background:#fff}table.alerts td,table.alerts th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
tr.error td{background:#fdecea}tr.warning td{background:#fff8e1}.note,.none,footer{color:#666}
</style></head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<dl class="facts">${Object.entries(facts)
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd>`)
    .join('')}</dl>
<h2>Curves</h2>
<p class="note">Hover for values; drag across a chart to zoom, double-click to reset.</p>
<div class="charts">${charts.join('') || '<p class="none">No metrics yet.</p>'}</div>
<h2>Samples (fixed noise)</h2>
<div class="timeline">${samples || '<p class="none">No samples yet.</p>'}</div>
<h2>Alerts</h2>
${alerts}
<footer><p>Written by @gantry/monitor${data.generatedAt ? ` at ${escapeHtml(data.generatedAt.toISOString())}` : ''}.</p></footer>
<script>${uplotFiles().script}</script>
<script>(function(){var mount=(${mountLineChart.toString()});var specs=${scriptJson(specs)};window.gantryCharts={};specs.forEach(function(spec){window.gantryCharts[spec.id]=mount(uPlot,document.getElementById('chart-'+spec.id),spec)})})()</script>
<script>addEventListener('load',function(){var n=0;for(var i=0;i<document.images.length;i++){var im=document.images[i];if(im.complete&&im.naturalWidth>0)n++}document.body.setAttribute('data-images-decoded',String(n))})</script>
</body></html>
`;
}

/** Sample grids `samples/step-NNNNNN.png` of a folder, by step. */
export function listSamples(dir: string): { step: number; file: string }[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, match: /^step-(\d+)\.png$/.exec(name) }))
    .filter((e) => e.match)
    .map((e) => ({ step: Number(e.match![1]), file: path.join(dir, e.name) }))
    .sort((a, b) => a.step - b.step);
}

export interface WriteReportOptions {
  /** metrics.jsonl to chart; default `<runDir>/metrics.jsonl`. */
  metricsFile?: string;
  /** Folder of sample grids; default `<runDir>/samples`. */
  samplesDir?: string;
  /** Output; default `<runDir>/report.html`. */
  file?: string;
  title?: string;
  /** Sample grids in the timeline at most; default 24. */
  maxSamples?: number;
  /** Used instead of the metrics file (e.g. rows kept in memory). */
  log?: MetricsLog;
  info?: Record<string, string | number>;
}

/** Builds report.html for a run folder from its metrics.jsonl and samples; written atomically. Returns the path. */
export function writeReport(runDir: string, options: WriteReportOptions = {}): string {
  const log = options.log ?? readMetricsLog(options.metricsFile ?? path.join(runDir, 'metrics.jsonl'));
  const samples = pickTimeline(listSamples(options.samplesDir ?? path.join(runDir, 'samples')), options.maxSamples ?? 24).map(
    (s) => ({ step: s.step, png: fs.readFileSync(s.file) }),
  );
  const html = renderReport({
    ...log,
    samples,
    title: options.title ?? `Gantry run ${path.basename(path.resolve(runDir))}`,
    info: { 'run folder': path.resolve(runDir), ...options.info },
    generatedAt: new Date(),
  });
  const file = options.file ?? path.join(runDir, 'report.html');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    fs.writeFileSync(tmp, html);
    fs.renameSync(tmp, file);
  } catch (error) {
    // A half-written report (disk full) must not stay behind and keep the disk full.
    fs.rmSync(tmp, { force: true });
    throw error;
  }
  return file;
}
