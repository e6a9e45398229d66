import type uPlot from 'uplot';

/** One named curve: (x, y) pairs, x increasing. */
export interface Series {
  key: string;
  points: [number, number][];
}

export interface ChartSpec {
  id: string;
  title: string;
  series: Series[];
  xLabel?: string;
  /** Plot width in CSS pixels; default: the container's width, at least 320. */
  width?: number;
  /** Plot height in CSS pixels; default 220. */
  height?: number;
}

export interface LineChart {
  /** Replaces the curves; keeps the user's zoom when there is one. */
  update(series: Series[]): void;
  /** Zooms the x axis to [min, max] (what dragging over the plot does). */
  zoomX(min: number, max: number): void;
  /** Back to the full range (what a double click does). */
  resetZoom(): void;
  destroy(): void;
  readonly uplot: uPlot;
}

/**
 * Mounts an interactive line chart (uPlot) into `container`: values of every series at the cursor in the legend below
 * the plot (where long metric names wrap instead of being cut off), drag to zoom the steps, double click to reset.
 * Non-finite values leave gaps. Shared by the run report and the playground.
 *
 * The report inlines this function's source text next to uPlot's IIFE build, so it must stay self-contained: it uses
 * only its parameters and browser globals (no imports, no module-level helpers).
 */
export function mountLineChart(UPlot: typeof uPlot, container: HTMLElement, spec: ChartSpec): LineChart {
  const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
  const format = (v: number | null | undefined): string => {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
    return Number(v.toPrecision(5)).toString();
  };
  // uPlot wants one shared x array with a y array per series aligned to it (null where a series has no point).
  const align = (series: Series[]): uPlot.AlignedData => {
    const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].filter(Number.isFinite).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const y: (number | null)[] = new Array(xs.length).fill(null);
      for (const [x, v] of s.points) if (index.has(x)) y[index.get(x)!] = Number.isFinite(v) ? v : null;
      return y;
    });
    return [xs, ...ys] as uPlot.AlignedData;
  };
  let zoomed = false;
  let keys = spec.series.map((s) => s.key);
  const options = (): uPlot.Options => ({
    title: spec.title,
    width: spec.width ?? Math.max(320, container.clientWidth || 640),
    height: spec.height ?? 220,
    cursor: { drag: { x: true, y: false, setScale: true } },
    legend: { live: true },
    scales: { x: { time: false } },
    axes: [{ label: spec.xLabel ?? 'step' }, { size: 60, values: (_u, ticks) => ticks.map((t) => format(t)) }],
    series: [
      { label: spec.xLabel ?? 'step', value: (_u, v) => (v === null || v === undefined ? '–' : String(v)) },
      ...keys.map((key, i) => ({
        label: key,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { show: false },
        value: (_u: uPlot, v: number | null) => format(v),
      })),
    ],
    hooks: {
      // A drag-zoom sets the x scale; a double click (uPlot's reset) brings back the full range.
      setSelect: [() => (zoomed = true)],
    },
  });
  container.classList.add('gantry-chart');
  container.setAttribute('data-chart', spec.id);
  let plot: uPlot = new UPlot(options(), align(spec.series), container);
  container.addEventListener('dblclick', () => (zoomed = false));

  return {
    get uplot() {
      return plot;
    },
    update(series) {
      const nextKeys = series.map((s) => s.key);
      if (nextKeys.join('\u0000') !== keys.join('\u0000')) {
        // New series: rebuild (uPlot adds series one by one; a rebuild keeps colours in order).
        keys = nextKeys;
        spec = { ...spec, series };
        plot.destroy();
        plot = new UPlot(options(), align(series), container);
        zoomed = false;
        return;
      }
      plot.setData(align(series), !zoomed);
    },
    zoomX(min, max) {
      zoomed = true;
      plot.setScale('x', { min, max });
    },
    resetZoom() {
      zoomed = false;
      const xs = plot.data[0];
      if (xs.length) plot.setScale('x', { min: xs[0], max: xs[xs.length - 1] });
    },
    destroy() {
      plot.destroy();
    },
  };
}

/**
 * The legend as one row per series under the plot, names wrapping within the plot's width (uPlot's inline legend
 * puts every series on one line and lets long names run past the chart).
 */
export const LINE_CHART_CSS = [
  '.gantry-chart .u-title{font-size:13px;font-weight:600}',
  '.gantry-chart .u-legend{text-align:left;font-size:12px;margin:0}',
  '.gantry-chart .u-legend.u-inline .u-series{display:flex;align-items:baseline;margin:0}',
  '.gantry-chart .u-legend.u-inline .u-series th{display:flex;align-items:baseline;flex:1 1 auto;min-width:0}',
  '.gantry-chart .u-legend .u-label{white-space:normal;overflow-wrap:anywhere}',
  '.gantry-chart .u-legend .u-value{flex:none;margin-left:8px;font-variant-numeric:tabular-nums}',
].join('');
