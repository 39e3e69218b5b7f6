/** results.json: the summary rows and every question's numbers and outputs, per method and run. */
import type { Summary } from '../metrics.js';
import type { BenchMeta, PairRecord } from '../store/records.js';

export function resultsJson(meta: BenchMeta, summary: Summary, records: readonly PairRecord[]): string {
  const questionIds = [...new Set(records.map((r) => r.question))];
  const questions = questionIds.map((id) => {
    const own = records.filter((r) => r.question === id);
    const methods = Object.fromEntries(
      summary.methods
        .map((method) => {
          const measure = summary.questions.find((q) => q.method === method && q.question === id);
          if (!measure) return undefined;
          const runs = own.filter((r) => r.method === method).sort((a, b) => a.run - b.run).map((r) => ({ run: r.run, seed: r.seed, turns: r.turns }));
          const { tokensPerSecond, newTokens, tau, equalsVanilla } = measure;
          return [method, { tokensPerSecond, newTokens, tau, equalsVanilla, runs }] as const;
        })
        .filter((entry) => entry !== undefined),
    );
    return { id, category: own[0].category, ...(own[0].subcategory !== undefined && { subcategory: own[0].subcategory }), methods };
  });
  // One question per line: token lists stay on one line each, so the file stays small and greppable.
  const lines = questions.map((q) => JSON.stringify(q));
  return `{"meta": ${JSON.stringify(meta)},\n"summary": ${JSON.stringify(summary.rows)},\n"questions": [\n${lines.join(',\n')}\n]}\n`;
}
