/** One-line descriptions of a saved measurement, for headers of tables, documents and charts. */
import type { BenchMeta } from '../store/records.js';

export function describePrompt(meta: BenchMeta): string {
  const p = meta.settings.prompt;
  if (p.kind === 'plain') return meta.dataset.fewshot ? `plain text, ${meta.dataset.fewshot.shots}-shot` : 'plain text';
  return p.system ? 'chat template + system prompt' : 'chat template';
}

export function describeSettings(meta: BenchMeta): string {
  const s = meta.settings;
  const decoding = s.temperature === 0 ? 'greedy' : `temperature ${s.temperature}, seed ${s.seed}`;
  return `${decoding}, max ${s.maxNewTokens} new tokens, ${describePrompt(meta)}, ${meta.runs} run(s), ${meta.warmup} warm-up`;
}

export function describeRun(meta: BenchMeta): string {
  return `${meta.model.source} on ${meta.dataset.name}, ${meta.device}`;
}
