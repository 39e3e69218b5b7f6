/** Turns a saved output folder into its reports: results.md, results.csv, results.json, speedup.svg and the terminal text. */
import path from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { summarize, type Summary } from '../metrics.js';
import type { BenchMeta } from '../store/records.js';
import type { SavedResults } from '../store/result-store.js';
import { summaryCsv } from './csv.js';
import { describeRun, describeSettings } from './describe.js';
import { resultsJson } from './results-json.js';
import { resultsMarkdown } from './results-markdown.js';
import { speedupChart } from './speedup-chart.js';
import { fullTable, matrixTable } from './summary-tables.js';
import { renderText } from './table.js';

export const REPORT_FILES = { markdown: 'results.md', csv: 'results.csv', json: 'results.json', chart: 'speedup.svg' } as const;

export function summarizeSaved(saved: SavedResults): Summary {
  const { meta } = saved;
  return summarize(saved.records, { methods: meta.methods, categories: meta.dataset.categories, greedy: meta.settings.temperature === 0 });
}

/** Writes every report file into the folder and returns the summary they show. */
export function writeReports(saved: SavedResults): Summary {
  const summary = summarizeSaved(saved);
  const { meta, dir } = saved;
  writeFileAtomic(path.join(dir, REPORT_FILES.markdown), resultsMarkdown(meta, summary));
  writeFileAtomic(path.join(dir, REPORT_FILES.csv), summaryCsv(summary));
  writeFileAtomic(path.join(dir, REPORT_FILES.json), resultsJson(meta, summary, saved.records));
  writeFileAtomic(path.join(dir, REPORT_FILES.chart), speedupChart(summary, `Speedup over vanilla: ${describeRun(meta)}`, describeSettings(meta)));
  return summary;
}

export function terminalReport(meta: BenchMeta, summary: Summary): string {
  return [
    `${describeRun(meta)} (${describeSettings(meta)})`,
    '',
    renderText(fullTable(summary)),
    'speedup over vanilla (τ):',
    renderText(matrixTable(summary)),
  ].join('\n');
}
