/**
 * Spec-Bench's speed.py formulas over stored records (docs/bench.md has them written out):
 * - per question and run: speed = Σ_turns new_tokens / Σ_turns wall_time (prefill included);
 *   over runs, the question's median speed;
 * - tokens/s of a method and category: the mean over its questions of those speeds;
 * - τ: the mean over every decoding step of every question and run (pooled), bonus token included;
 * - speedup: the ratio of two methods' tokens/s (a ratio of means, not a mean of ratios).
 */
import { ALL_CATEGORY } from './dataset/formats.js';
import { mean, median, sum } from './stats.js';
import type { PairRecord } from './store/records.js';

export const VANILLA = 'vanilla';
export const EAGLE2 = 'eagle2';

/** One method's numbers on one question, over its runs. */
export interface QuestionMeasure {
  method: string;
  question: string;
  category: string;
  runs: number;
  /** Median over runs of Σ new tokens / Σ wall seconds. */
  tokensPerSecond: number;
  /** Median over runs of Σ new tokens. */
  newTokens: number;
  /** Mean of the pooled per-step accept lengths of all turns and runs; null when none were reported. */
  tau: number | null;
  /** Greedy runs: whether every run's every turn produced vanilla's tokens; null when not judged. */
  equalsVanilla: boolean | null;
}

export interface SummaryRow {
  method: string;
  category: string;
  questions: number;
  newTokens: number;
  tokensPerSecond: number;
  tau: number | null;
  speedupVsVanilla: number | null;
  speedupVsEagle2: number | null;
  outputsEqual: boolean | null;
}

export interface Summary {
  methods: string[];
  categories: string[];
  rows: SummaryRow[];
  questions: QuestionMeasure[];
}

export interface SummaryOptions {
  /** Method order (records of other methods come after). */
  methods: readonly string[];
  /** Category order (categories found only in records come after); "all" is added last. */
  categories: readonly string[];
  /** Output equality is judged only for greedy decoding. */
  greedy: boolean;
}

const runSpeed = (r: PairRecord) => sum(r.turns.map((t) => t.newTokens)) / sum(r.turns.map((t) => t.wallSeconds));
const runTokens = (r: PairRecord) => sum(r.turns.map((t) => t.newTokens));
const sameTokens = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id, i) => id === b[i]);

export function summarize(records: readonly PairRecord[], options: SummaryOptions): Summary {
  const byPair = groupBy(records, (r) => JSON.stringify([r.method, r.question]));
  const vanillaReference = new Map<string, PairRecord>();
  for (const r of records) {
    if (r.method !== VANILLA) continue;
    const current = vanillaReference.get(r.question);
    if (!current || r.run < current.run) vanillaReference.set(r.question, r);
  }
  const questions = [...byPair.values()].map((runs) => measureQuestion(runs, options.greedy ? vanillaReference : undefined));

  const methods = orderBy(options.methods, questions.map((q) => q.method));
  const categories = orderBy(options.categories, questions.map((q) => q.category));
  const rows: SummaryRow[] = [];
  for (const category of [...categories, ALL_CATEGORY]) {
    const inCategory = (q: QuestionMeasure) => category === ALL_CATEGORY || q.category === category;
    const perMethod = methods.map((method) => ({ method, measures: questions.filter((q) => q.method === method && inCategory(q)) })).filter((m) => m.measures.length > 0);
    const speeds = new Map(perMethod.map((m) => [m.method, mean(m.measures.map((q) => q.tokensPerSecond))]));
    const ratio = (method: string, reference: string) => (speeds.has(reference) ? speeds.get(method)! / speeds.get(reference)! : null);
    for (const { method, measures } of perMethod) {
      const stepRecords = records.filter((r) => r.method === method && (category === ALL_CATEGORY || r.category === category));
      const steps = stepRecords.flatMap((r) => r.turns.flatMap((t) => t.acceptLengths));
      const judged = measures.map((q) => q.equalsVanilla).filter((e): e is boolean => e !== null);
      rows.push({
        method,
        category,
        questions: measures.length,
        newTokens: sum(measures.map((q) => q.newTokens)),
        tokensPerSecond: speeds.get(method)!,
        tau: steps.length > 0 ? mean(steps) : null,
        speedupVsVanilla: ratio(method, VANILLA),
        speedupVsEagle2: ratio(method, EAGLE2),
        outputsEqual: judged.length > 0 ? judged.every(Boolean) : null,
      });
    }
  }
  const allCategories = [...categories, ALL_CATEGORY];
  // One block per method, its categories in dataset order and "all" last.
  rows.sort((a, b) => methods.indexOf(a.method) - methods.indexOf(b.method) || allCategories.indexOf(a.category) - allCategories.indexOf(b.category));
  return { methods, categories: allCategories, rows, questions };
}

function measureQuestion(runs: readonly PairRecord[], vanilla?: ReadonlyMap<string, PairRecord>): QuestionMeasure {
  const first = runs[0];
  const steps = runs.flatMap((r) => r.turns.flatMap((t) => t.acceptLengths));
  const reference = vanilla?.get(first.question);
  const equalsVanilla = reference
    ? runs.every((r) => r.turns.length === reference.turns.length && r.turns.every((t, i) => sameTokens(t.tokenIds, reference.turns[i].tokenIds)))
    : null;
  return {
    method: first.method,
    question: first.question,
    category: first.category,
    runs: runs.length,
    tokensPerSecond: median(runs.map(runSpeed)),
    newTokens: median(runs.map(runTokens)),
    tau: steps.length > 0 ? mean(steps) : null,
    equalsVanilla,
  };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** `preferred` entries that occur in `found`, then the rest of `found` in first-seen order. */
function orderBy(preferred: readonly string[], found: readonly string[]): string[] {
  const present = new Set(found);
  const ordered = preferred.filter((p) => present.has(p));
  for (const f of found) if (!ordered.includes(f)) ordered.push(f);
  return ordered;
}
