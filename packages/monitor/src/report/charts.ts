/** Server-side SVG line charts: the report needs no script and no network to show them. */
export interface Series {
  key: string;
  points: [number, number][];
}

export interface ChartOptions {
  id: string;
  title: string;
  series: Series[];
  xLabel?: string;
  width?: number;
  height?: number;
  /** Points drawn per series at most; longer series are averaged in buckets. Default 600. */
  maxPoints?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Bucket means, keeping the first and last point, so long runs stay light without shifting the curve. */
export function downsample(points: [number, number][], max: number): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const size = points.length / max;
  for (let b = 0; b < max; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(points.length, Math.floor((b + 1) * size));
    let sx = 0;
    let sy = 0;
    for (let i = start; i < end; i++) {
      sx += points[i][0];
      sy += points[i][1];
    }
    out.push([sx / (end - start), sy / (end - start)]);
  }
  out[0] = points[0];
  out[out.length - 1] = points[points.length - 1];
  return out;
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 260;
  const m = { left: 60, right: 150, top: 28, bottom: 36 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const series = options.series
    .map((s) => ({ key: s.key, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }))
    .filter((s) => s.points.length > 0);
  const all = series.flatMap((s) => s.points);
  const head = `<svg class="chart" data-chart="${escapeHtml(options.id)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(options.title)}">`;
  const title = `<text class="chart-title" x="${m.left}" y="18">${escapeHtml(options.title)}</text>`;
  if (all.length === 0) {
    return `${head}${title}<text x="${m.left}" y="${m.top + plotH / 2}">no data</text></svg>`;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => m.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [head, title];
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="#fff" stroke="#ccc"/>`);
  for (const t of niceTicks(y0, y1)) {
    const y = sy(t).toFixed(1);
    parts.push(`<line class="grid" x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text class="tick" x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    const x = sx(t).toFixed(1);
    parts.push(`<text class="tick" x="${x}" y="${m.top + plotH + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(
    `<text class="axis-label" x="${m.left + plotW / 2}" y="${height - 4}" text-anchor="middle">${escapeHtml(options.xLabel ?? 'step')}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = downsample(s.points, options.maxPoints ?? 600);
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join('');
    parts.push(
      `<path class="series" data-series="${escapeHtml(s.key)}" data-points="${pts.length}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5"><title>${escapeHtml(s.key)}</title></path>`,
    );
    if (pts.length === 1) parts.push(`<circle cx="${sx(pts[0][0]).toFixed(1)}" cy="${sy(pts[0][1]).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = m.top + 8 + i * 16;
    parts.push(`<line x1="${width - m.right + 10}" x2="${width - m.right + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text class="legend" x="${width - m.right + 30}" y="${ly}" dominant-baseline="middle">${escapeHtml(s.key)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
