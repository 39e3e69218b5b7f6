import Papa from 'papaparse';
import type { Summary } from '../metrics.js';
import { round } from './format.js';

export const CSV_COLUMNS = ['method', 'category', 'questions', 'new_tokens', 'tokens_per_s', 'tau', 'speedup_vs_vanilla', 'speedup_vs_eagle2', 'outputs_equal'] as const;

const optional = (v: number | null) => (v === null ? '' : round(v));

/** results.csv: one row per method and category, then the method's "all" row; empty cells where a number does not apply. */
export function summaryCsv(summary: Summary): string {
  const data = summary.rows.map((r) => [
    r.method,
    r.category,
    r.questions,
    round(r.newTokens),
    round(r.tokensPerSecond),
    optional(r.tau),
    optional(r.speedupVsVanilla),
    optional(r.speedupVsEagle2),
    r.outputsEqual === null ? '' : String(r.outputsEqual),
  ]);
  return Papa.unparse({ fields: [...CSV_COLUMNS], data }, { newline: '\n' }) + '\n';
}
