import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeImageGrid } from '../src/images.js';
import { parseMetricsLog } from '../src/metrics-file.js';
import { downsample, niceTicks } from '../src/report/charts.js';
import { pickTimeline, renderReport, writeReport } from '../src/report/render.js';

const CHROMIUM = '/usr/bin/chromium';

/** A run folder with 300 steps of metrics, FID every 100 steps, two alerts and three sample grids. */
function makeRun(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-report-'));
  const lines: string[] = [];
  for (let step = 1; step <= 300; step++) {
    lines.push(
      JSON.stringify({
        step,
        time: 1000 + step / 10,
        d_loss: 1 - step / 600,
        g_loss: 0.5 + step / 600,
        'diagnostics/grad_norm/D': 2,
        'diagnostics/grad_norm/G': 1,
        'D/wgan-gp/penalty': 0.1,
      }),
    );
    if (step % 100 === 0) lines.push(JSON.stringify({ step, time: 1000 + step / 10, kind: 'eval', fid: 300 / step }));
  }
  lines.push(JSON.stringify({ step: 40, time: 1004, kind: 'alert', alert: 'd_overpowering', severity: 'warning', message: 'D <wins> early' }));
  lines.push(JSON.stringify({ step: 250, time: 1025, kind: 'alert', alert: 'mode_collapse', severity: 'error', message: 'collapse' }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  fs.mkdirSync(path.join(dir, 'samples'));
  for (const step of [100, 200, 300]) {
    const { png } = encodeImageGrid(new Float32Array(4 * 4 * 4).fill(step / 300), [4, 4, 4, 1]);
    fs.writeFileSync(path.join(dir, 'samples', `step-${String(step).padStart(6, '0')}.png`), png);
  }
  return dir;
}

/** The path of one series inside one chart of an HTML/DOM string, as numeric (x, y) pairs. */
function seriesPath(html: string, chart: string, series: string): { points: number; coords: [number, number][] } {
  const svg = new RegExp(`<svg[^>]*data-chart="${chart}"[\\s\\S]*?</svg>`).exec(html);
  if (!svg) throw new Error(`no chart ${chart}`);
  const p = new RegExp(`<path[^>]*data-series="${series.replace(/\//g, '\\/')}"[^>]*>`).exec(svg[0]);
  if (!p) throw new Error(`no series ${series} in ${chart}`);
  const points = Number(/data-points="(\d+)"/.exec(p[0])![1]);
  const d = /\sd="([^"]+)"/.exec(p[0])![1];
  const coords = [...d.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])] as [number, number]);
  return { points, coords };
}

describe('metrics log parsing', () => {
  it('keeps the latest row of a step repeated after a resume and separates eval and alert rows', () => {
    const text = [
      { step: 1, time: 1, d_loss: 0.7 },
      { step: 2, time: 2, d_loss: 0.6 },
      { step: 2, time: 9, d_loss: 0.5 }, // resumed run repeats step 2
      { step: 2, time: 9, kind: 'eval', fid: 40 },
      { step: 2, time: 9, kind: 'alert', alert: 'oscillation', severity: 'warning', message: 'm' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n')
      .concat('\n{"step": 3, "d_lo'); // torn last line
    const log = parseMetricsLog(text);
    expect(log.steps).toEqual([
      { step: 1, time: 1, d_loss: 0.7 },
      { step: 2, time: 9, d_loss: 0.5 },
    ]);
    expect(log.evals).toEqual([{ step: 2, time: 9, metrics: { fid: 40 } }]);
    expect(log.alerts).toHaveLength(1);
  });
});

describe('chart helpers', () => {
  it('downsamples by bucket means and keeps the end points', () => {
    const pts = Array.from({ length: 10 }, (_, i) => [i, i * 2] as [number, number]);
    expect(downsample(pts, 5)).toEqual([
      [0, 0],
      [2.5, 5],
      [4.5, 9],
      [6.5, 13],
      [9, 18],
    ]);
  });

  it('chooses round ticks', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97)).toEqual([20, 40, 60, 80]);
  });

  it('picks an even timeline with first and last', () => {
    expect(pickTimeline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4)).toEqual([1, 4, 7, 10]);
  });
});

describe('renderReport', () => {
  it('draws losses, gradient norms, loss terms, FID, samples and alerts without network references', () => {
    const dir = makeRun();
    const file = writeReport(dir);
    expect(file).toBe(path.join(dir, 'report.html'));
    const html = fs.readFileSync(file, 'utf8');
    for (const chart of ['losses', 'grad-norms', 'loss-terms', 'fid']) expect(html).toContain(`data-chart="${chart}"`);
    expect(seriesPath(html, 'losses', 'd_loss').points).toBe(300);
    expect(seriesPath(html, 'fid', 'fid').points).toBe(3);
    expect(html.match(/<figure class="sample"/g)).toHaveLength(3);
    expect(html).toContain('D &lt;wins&gt; early');
    expect(html).toContain('best FID');
    // Self-contained: no external URL in any src or href, no stylesheet or script files.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<link|<script src/);
    expect(renderReport({ title: 'empty', steps: [], evals: [], alerts: [], samples: [] })).toContain('No metrics yet.');
  });

  it.skipIf(!fs.existsSync(CHROMIUM))('loads in headless Chromium with its charts and images (needs /usr/bin/chromium)', () => {
    const dir = makeRun();
    const file = writeReport(dir);
    const dom = execFileSync(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-dev-shm-usage',
        `--user-data-dir=${fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-chromium-'))}`,
        '--virtual-time-budget=5000',
        '--dump-dom',
        `file://${file}`,
      ],
      { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    // The browser parsed the inline SVG into the DOM: four charts with their series.
    expect(dom.match(/<svg class="chart"/g)!.length).toBeGreaterThanOrEqual(4);
    const d = seriesPath(dom, 'losses', 'd_loss');
    expect(d.points).toBe(300);
    expect(d.coords).toHaveLength(300);
    // d_loss falls linearly: x increases and the SVG y (downwards) increases with every step.
    for (let i = 1; i < d.coords.length; i++) {
      expect(d.coords[i][0]).toBeGreaterThan(d.coords[i - 1][0]);
      expect(d.coords[i][1]).toBeGreaterThanOrEqual(d.coords[i - 1][1]);
    }
    const fid = seriesPath(dom, 'fid', 'fid');
    expect(fid.coords).toHaveLength(3);
    expect(fid.coords[0][1]).toBeLessThan(fid.coords[2][1]); // FID 3 → 1: the curve goes down the page
    expect(seriesPath(dom, 'grad-norms', 'diagnostics/grad_norm/D').points).toBe(300);
    // All three sample grids decoded from their data: URIs.
    expect(dom).toMatch(/data-images-decoded="3"/);
    expect(dom.match(/<tr class="alert (warning|error)"/g)).toHaveLength(2);
  });
});
