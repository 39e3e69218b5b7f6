/** results.md: what was measured and how, Spec-Bench's leaderboard view, the full table, and any outputs that differ. */
import type { Summary } from '../metrics.js';
import type { BenchMeta } from '../store/records.js';
import { describeRun, describeSettings } from './describe.js';
import { fullTable, matrixTable } from './summary-tables.js';
import { renderMarkdown } from './table.js';

export function resultsMarkdown(meta: BenchMeta, summary: Summary): string {
  const lines = [
    `# fr-spec bench: ${describeRun(meta)}`,
    '',
    `- model: \`${meta.model.dir}\` (config.json sha256 \`${meta.model.configSha256.slice(0, 16)}…\`)`,
    `- dataset: ${meta.dataset.name} (\`${meta.dataset.file}\`, ${meta.dataset.format} format)` + (meta.dataset.fewshot ? `, exemplars from \`${meta.dataset.fewshot.file}\`` : ''),
    `- settings: ${describeSettings(meta)}`,
    `- machine: ${meta.machine.cpu} (${meta.machine.cores} cores), ${meta.device}, Node ${meta.machine.node}`,
    `- measured ${meta.createdAt} – ${meta.updatedAt}`,
    '',
    '## Speedup over vanilla (τ)',
    '',
    renderMarkdown(matrixTable(summary)),
    '## All numbers',
    '',
    renderMarkdown(fullTable(summary)),
    'tokens/s: mean over questions of (generated tokens / wall time, prefill included), median over runs per question; ' +
      'τ: tokens committed per decoding step (accepted drafts + 1), pooled over all steps; speedup: ratio of mean tokens/s. ' +
      'Formulas: docs/bench.md.',
    '',
  ];
  const differing = summary.questions.filter((q) => q.equalsVanilla === false);
  if (differing.length > 0) {
    lines.push('## Outputs that differ from vanilla', '');
    for (const method of summary.methods) {
      const ids = differing.filter((q) => q.method === method).map((q) => q.question);
      if (ids.length > 0) lines.push(`- ${method}: ${ids.join(', ')}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
