// Browser-safe: the charts of the run report and the playground (`@gantry/monitor/charts`).
export { mountLineChart, LINE_CHART_CSS, type ChartSpec, type LineChart, type Series } from './line-chart.js';
export { downsample } from './downsample.js';
