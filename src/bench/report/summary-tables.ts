/**
 * The two views of a summary: the full table (one row per method and category, every number) and
 * Spec-Bench's leaderboard layout (methods × categories, speedup over vanilla with τ).
 */
import type { Summary, SummaryRow } from '../metrics.js';
import { formatCount, formatEqual, formatSpeed, formatSpeedup, formatTau } from './format.js';
import type { Table } from './table.js';

export function fullTable(summary: Summary): Table {
  return {
    header: ['method', 'category', 'questions', 'new tokens', 'tokens/s', 'τ', 'vs vanilla', 'vs eagle2', 'equals vanilla'],
    align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    rows: summary.rows.map((r) => [
      r.method,
      r.category,
      String(r.questions),
      formatCount(r.newTokens),
      formatSpeed(r.tokensPerSecond),
      formatTau(r.tau),
      formatSpeedup(r.speedupVsVanilla),
      formatSpeedup(r.speedupVsEagle2),
      formatEqual(r.outputsEqual),
    ]),
  };
}

/** Methods as rows, categories as columns: "speedup (τ)" per cell. */
export function matrixTable(summary: Summary): Table {
  const find = (method: string, category: string): SummaryRow | undefined => summary.rows.find((r) => r.method === method && r.category === category);
  const cell = (row?: SummaryRow) => (row ? `${formatSpeedup(row.speedupVsVanilla)} (${formatTau(row.tau)})` : '');
  return {
    header: ['method', ...summary.categories],
    rows: summary.methods.map((method) => [method, ...summary.categories.map((category) => cell(find(method, category)))]),
  };
}
