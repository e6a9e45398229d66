// The browser entry: training-health diagnostics, the charts and the class rows of a conditional sample grid. Writers
// of files (metrics, grids, TensorBoard, W&B, report.html) and the progress bar are Node-only and live in the main entry.
import './events.js';

export { diagnostics, type DiagnosticsOptions } from './plugins/diagnostics.js';
export { gridLabels } from './plugins/grid-labels.js';
export {
  DEFAULT_THRESHOLDS,
  DiscriminatorOverpowerDetector,
  GradNormRatioDetector,
  ModeCollapseDetector,
  OscillationDetector,
  diversityStats,
  type DiagnosticThresholds,
  type DiversityStats,
  type Finding,
} from './diagnostics/detectors.js';
export { mountLineChart, LINE_CHART_CSS, downsample, type ChartSpec, type LineChart, type Series } from './charts/index.js';
