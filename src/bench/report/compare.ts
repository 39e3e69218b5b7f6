/**
 * `fr-spec bench report A B …`: several output folders side by side, one row per method and
 * category, tokens/s, τ and speedup per folder (and B/A of tokens/s for two folders).
 */
import path from 'node:path';
import { ALL_CATEGORY } from '../dataset/formats.js';
import type { Summary, SummaryRow } from '../metrics.js';
import type { SavedResults } from '../store/result-store.js';
import { describeRun, describeSettings } from './describe.js';
import { formatSpeed, formatSpeedup, formatTau } from './format.js';
import type { Table } from './table.js';

export interface ComparedRun {
  label: string;
  saved: SavedResults;
  summary: Summary;
}

/** Folder base names, or longer relative paths where base names collide. */
export function runLabels(dirs: readonly string[]): string[] {
  const names = dirs.map((d) => path.basename(path.resolve(d)));
  return names.map((name, i) => (names.filter((n) => n === name).length > 1 ? path.relative(process.cwd(), path.resolve(dirs[i])) || '.' : name));
}

export function compareTable(runs: readonly ComparedRun[]): Table {
  const keys: { method: string; category: string }[] = [];
  for (const run of runs) {
    for (const row of run.summary.rows) if (!keys.some((k) => k.method === row.method && k.category === row.category)) keys.push(row);
  }
  const methodOrder = [...new Set(keys.map((k) => k.method))];
  const categoryOrder = [...new Set(keys.map((k) => k.category).filter((c) => c !== ALL_CATEGORY)), ALL_CATEGORY];
  keys.sort((a, b) => methodOrder.indexOf(a.method) - methodOrder.indexOf(b.method) || categoryOrder.indexOf(a.category) - categoryOrder.indexOf(b.category));

  const find = (run: ComparedRun, key: { method: string; category: string }): SummaryRow | undefined =>
    run.summary.rows.find((r) => r.method === key.method && r.category === key.category);
  const pair = runs.length === 2;
  const header = ['method', 'category', ...runs.flatMap((r) => [`tok/s ${r.label}`, `τ ${r.label}`, `speedup ${r.label}`]), ...(pair ? [`tok/s ${runs[1].label} / ${runs[0].label}`] : [])];
  const rows = keys.map((key) => {
    const found = runs.map((run) => find(run, key));
    const cells = found.flatMap((row) => (row ? [formatSpeed(row.tokensPerSecond), formatTau(row.tau), formatSpeedup(row.speedupVsVanilla)] : ['', '', '']));
    if (pair) cells.push(found[0] && found[1] ? formatSpeedup(found[1].tokensPerSecond / found[0].tokensPerSecond) : '');
    return [key.method, key.category, ...cells];
  });
  return { header, rows, align: header.map((_, c) => (c < 2 ? 'left' : 'right')) };
}

/** One line per folder: what it measured; plus warnings where the folders are not like for like. */
export function compareLegend(runs: readonly ComparedRun[]): string[] {
  const lines = runs.map((r) => `${r.label}: ${describeRun(r.saved.meta)} (${describeSettings(r.saved.meta)})`);
  const datasets = new Set(runs.map((r) => r.saved.meta.dataset.sha256));
  if (datasets.size > 1) lines.push('note: the folders measured different questions');
  const settings = new Set(runs.map((r) => JSON.stringify(r.saved.meta.settings)));
  if (settings.size > 1) lines.push('note: the folders used different generation settings');
  return lines;
}
