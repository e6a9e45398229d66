import type { ChartSpec } from '../src/charts/index.js';

/** The chart specs a report.html embeds for its inline chart script, by chart id. */
export function reportChartSpecs(html: string): Record<string, ChartSpec> {
  const json = /var specs=(\[.*?\]);window\.gantryCharts/s.exec(html);
  if (!json) throw new Error('no chart data in the report');
  return Object.fromEntries((JSON.parse(json[1]) as ChartSpec[]).map((spec) => [spec.id, spec]));
}
