/**
 * A grouped bar chart as a standalone SVG document: one group per x label, one bar per series,
 * a y axis with round ticks, an optional dashed reference line, value labels and a legend.
 */
export interface BarSeries {
  name: string;
  /** One value per group; null leaves a gap. */
  values: (number | null)[];
}

export interface BarChart {
  title: string;
  subtitle?: string;
  groups: string[];
  series: BarSeries[];
  yLabel: string;
  /** A dashed horizontal line (e.g. 1.0 for a speedup chart). */
  reference?: number;
  formatValue?: (v: number) => string;
}

/** Colours that stay apart for colour-blind readers (Okabe–Ito order). */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

const BAR = 24;
const GROUP_GAP = 28;
const PLOT_HEIGHT = 260;
const MARGIN = { left: 64, right: 24, top: 78, bottom: 36 };

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A tick step of 1, 2 or 5 × 10^k giving about five ticks up to `max`. */
export function niceStep(max: number): number {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? 10 * power;
}

export function renderBarChart(chart: BarChart): string {
  const format = chart.formatValue ?? ((v: number) => String(v));
  const values = chart.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const top = Math.max(...values, chart.reference ?? 0, 1e-9) * 1.12;
  const step = niceStep(top);
  const yMax = Math.ceil(top / step) * step;
  const groupWidth = Math.max(1, chart.series.length) * BAR + GROUP_GAP;
  const plotWidth = Math.max(chart.groups.length * groupWidth, 240);
  const legendWidth = chart.series.reduce((w, s) => w + 28 + 7 * s.name.length + 16, 0);
  const width = MARGIN.left + Math.max(plotWidth, legendWidth) + MARGIN.right;
  const height = MARGIN.top + PLOT_HEIGHT + MARGIN.bottom;
  const y = (v: number) => MARGIN.top + PLOT_HEIGHT - (v / yMax) * PLOT_HEIGHT;
  const parts: string[] = [];
  const text = (x: number, yPos: number, content: string, attrs = '') => `<text x="${x.toFixed(1)}" y="${yPos.toFixed(1)}"${attrs ? ' ' + attrs : ''}>${escapeXml(content)}</text>`;

  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(text(MARGIN.left, 24, chart.title, 'font-size="15" font-weight="bold"'));
  if (chart.subtitle) parts.push(text(MARGIN.left, 42, chart.subtitle, 'font-size="11" fill="#555555"'));

  let legendX = MARGIN.left;
  chart.series.forEach((s, i) => {
    parts.push(`<rect x="${legendX}" y="54" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    parts.push(text(legendX + 17, 64, s.name, 'font-size="11"'));
    legendX += 28 + 7 * s.name.length + 16;
  });

  for (let tick = 0; tick <= yMax + step / 2; tick += step) {
    const ty = y(tick);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(text(MARGIN.left - 8, ty + 4, format(Number(tick.toPrecision(6))), 'font-size="10" text-anchor="end" fill="#555555"'));
  }
  const axisMiddle = MARGIN.top + PLOT_HEIGHT / 2;
  parts.push(text(16, axisMiddle, chart.yLabel, `font-size="11" text-anchor="middle" transform="rotate(-90 16 ${axisMiddle})"`));

  chart.groups.forEach((group, g) => {
    const groupX = MARGIN.left + g * groupWidth + GROUP_GAP / 2;
    chart.series.forEach((s, i) => {
      const v = s.values[g];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const x = groupX + i * BAR;
      const barTop = y(Math.max(0, v));
      parts.push(`<rect x="${x}" y="${barTop.toFixed(1)}" width="${BAR - 2}" height="${(MARGIN.top + PLOT_HEIGHT - barTop).toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${s.name}, ${group}: ${format(v)}`)}</title></rect>`);
      parts.push(text(x + (BAR - 2) / 2, barTop - 3, format(v), 'font-size="8" text-anchor="middle" fill="#333333"'));
    });
    parts.push(text(groupX + (chart.series.length * BAR) / 2, MARGIN.top + PLOT_HEIGHT + 16, group, 'font-size="11" text-anchor="middle"'));
  });

  if (chart.reference !== undefined) {
    const ry = y(chart.reference).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${ry}" y2="${ry}" stroke="#333333" stroke-dasharray="4 3"/>`);
  }
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + PLOT_HEIGHT}" y2="${MARGIN.top + PLOT_HEIGHT}" stroke="#333333"/>`);

  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">\n` +
    parts.map((p) => `  ${p}`).join('\n') +
    '\n</svg>\n'
  );
}
