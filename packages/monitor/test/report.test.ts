import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { collectPageErrors, hasChromium, launchChromium } from '../../../test-support/chromium.js';
import { downsample } from '../src/charts/downsample.js';
import { encodeImageGrid } from '../src/images.js';
import { parseMetricsLog } from '../src/metrics-file.js';
import { pickTimeline, renderReport, writeReport } from '../src/report/render.js';
import { reportChartSpecs } from './report-specs.js';

/** A loss-term name longer than the chart is wide: the legend must show it whole. */
const LONG_KEY = 'D/a-plugin-with-a-rather-long-descriptive-name/and-a-loss-term-whose-name-is-also-quite-long-indeed';

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
        [LONG_KEY]: step / 1000,
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

  it('picks an even timeline with first and last', () => {
    expect(pickTimeline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4)).toEqual([1, 4, 7, 10]);
  });
});

describe('renderReport', () => {
  it('embeds losses, gradient norms, loss terms, FID, samples and alerts without network references', () => {
    const dir = makeRun();
    const file = writeReport(dir);
    expect(file).toBe(path.join(dir, 'report.html'));
    const html = fs.readFileSync(file, 'utf8');
    const specs = reportChartSpecs(html);
    expect(Object.keys(specs)).toEqual(['losses', 'grad-norms', 'loss-terms', 'fid']);
    const dLoss = specs.losses.series.find((s) => s.key === 'd_loss')!;
    expect(dLoss.points).toHaveLength(300);
    expect(dLoss.points[149]).toEqual([150, 0.75]);
    expect(specs.fid.series[0].points).toEqual([
      [100, 3],
      [200, 1.5],
      [300, 1],
    ]);
    expect(specs['loss-terms'].series.map((s) => s.key)).toEqual([LONG_KEY, 'D/wgan-gp/penalty']);
    expect(html.match(/<figure class="sample"/g)).toHaveLength(3);
    expect(html).toContain('D &lt;wins&gt; early');
    expect(html).toContain('best FID');
    // Self-contained: no external URL in any src or href, no stylesheet or script files.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<link|<script src/);
    expect(renderReport({ title: 'empty', steps: [], evals: [], alerts: [], samples: [] })).toContain('No metrics yet.');
  });
});

describe.skipIf(!hasChromium)('report.html in headless Chromium (needs /usr/bin/chromium)', () => {
  let browser: Browser;
  let page: Page;
  let errors: string[];
  beforeAll(async () => {
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    errors = collectPageErrors(page);
    await page.goto(`file://${writeReport(makeRun())}`);
    await page.waitForFunction(() => document.body.hasAttribute('data-images-decoded'));
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Page coordinates of (step, value) on a chart's plot area. */
  const at = (id: string, step: number) =>
    page.evaluate(
      ([id, step]) => {
        const u = (window as any).gantryCharts[id].uplot;
        const box = u.over.getBoundingClientRect();
        return { x: box.left + u.valToPos(step, 'x'), y: box.top + box.height / 2 };
      },
      [id, step] as const,
    );
  const legend = (id: string) =>
    page.evaluate((id) => {
      const rows = Array.from(document.querySelectorAll(`[data-chart="${id}"] .u-legend .u-series`));
      return Object.fromEntries(rows.map((r) => [r.querySelector('.u-label')!.textContent, r.querySelector('.u-value')!.textContent]));
    }, id);

  it('draws every chart, the sample grids and the alerts, with no console errors', async () => {
    const drawn = await page.evaluate(() =>
      Array.from(document.querySelectorAll('[data-chart] canvas')).map((c) => {
        const canvas = c as HTMLCanvasElement;
        const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
        return inked;
      }),
    );
    expect(drawn).toHaveLength(4);
    for (const inked of drawn) expect(inked).toBeGreaterThan(500);
    expect(await page.getAttribute('body', 'data-images-decoded')).toBe('3');
    expect(await page.locator('tr.alert').count()).toBe(2);
    expect(errors).toEqual([]);
  });

  it('shows the values at the cursor in the legend', async () => {
    const p = await at('losses', 120);
    await page.mouse.move(p.x, p.y);
    const values = await legend('losses');
    expect(values.step).toBe('120');
    expect(Number(values.d_loss)).toBeCloseTo(1 - 120 / 600, 10);
    expect(Number(values.g_loss)).toBeCloseTo(0.5 + 120 / 600, 10);
  });

  it('zooms the steps by dragging and resets on double click', async () => {
    const from = await at('losses', 100);
    const to = await at('losses', 200);
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 5 });
    await page.mouse.up();
    const zoomed = await page.evaluate(() => (window as any).gantryCharts.losses.uplot.scales.x);
    // One CSS pixel is under one step at this width.
    expect(zoomed.min).toBeGreaterThan(99);
    expect(zoomed.min).toBeLessThan(101);
    expect(zoomed.max).toBeGreaterThan(199);
    expect(zoomed.max).toBeLessThan(201);
    await page.mouse.dblclick(from.x, from.y);
    const reset = await page.evaluate(() => (window as any).gantryCharts.losses.uplot.scales.x);
    expect([reset.min, reset.max]).toEqual([1, 300]);
  });

  it('shows long metric names whole, inside the chart', async () => {
    const label = await page.evaluate((key) => {
      const chart = document.querySelector('[data-chart="loss-terms"]')!;
      const el = Array.from(chart.querySelectorAll('.u-legend .u-label')).find((e) => e.textContent === key) as HTMLElement;
      const root = chart.querySelector('.uplot')!.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return { clipped: el.scrollWidth > el.clientWidth, right: box.right, rootRight: root.right, lines: Math.round(box.height / parseFloat(getComputedStyle(el).lineHeight)) };
    }, LONG_KEY);
    expect(label.clipped).toBe(false);
    expect(label.right).toBeLessThanOrEqual(label.rootRight + 0.5);
    expect(label.lines).toBeGreaterThanOrEqual(2);
  });
});
