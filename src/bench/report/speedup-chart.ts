import type { Summary } from '../metrics.js';
import { VANILLA } from '../metrics.js';
import { renderBarChart } from './svg-bar-chart.js';

/** speedup.svg: speedup over vanilla per category (groups) and method (bars); vanilla is the dashed 1× line. */
export function speedupChart(summary: Summary, title: string, subtitle?: string): string {
  const methods = summary.methods.filter((m) => m !== VANILLA);
  const speedup = (method: string, category: string) => summary.rows.find((r) => r.method === method && r.category === category)?.speedupVsVanilla ?? null;
  return renderBarChart({
    title,
    subtitle,
    groups: summary.categories,
    series: methods.map((method) => ({ name: method, values: summary.categories.map((category) => speedup(method, category)) })),
    yLabel: 'speedup over vanilla (×)',
    reference: 1,
    formatValue: (v) => `${v.toFixed(2)}`,
  });
}
