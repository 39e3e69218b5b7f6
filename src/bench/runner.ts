/**
 * Measures what an output folder still lacks: warm-up generations first, then every pending
 * (run, question, method) with the methods interleaved question by question — and their order
 * rotated from one question to the next — so drift on a shared machine (clocks, other jobs, heat)
 * falls on all methods alike. Each finished pair is stored before the next starts.
 */
import { askQuestion, promptBuilder } from './conversation.js';
import type { PairRecord } from './store/records.js';
import type { ResultStore } from './store/result-store.js';
import type { BenchBackend, BenchQuestion, GenerationOptions, MethodRunner, MethodSpec, PromptStyle } from './types.js';

export interface BenchPlan {
  questions: readonly BenchQuestion[];
  methods: readonly MethodSpec[];
  style: PromptStyle;
  maxNewTokens: number;
  temperature: number;
  /** Run r uses seed + r − 1, the same for every method. */
  seed: number;
  runs: number;
  /** Generations per method on the first question before anything is timed. */
  warmup: number;
}

export interface PendingPair {
  run: number;
  questionIndex: number;
  method: MethodSpec;
}

export interface PairEvent extends PendingPair {
  question: BenchQuestion;
  /** Pairs finished in this invocation, and all it has to do. */
  done: number;
  total: number;
}

export interface RunnerEvents {
  onLoad?(method: string): void;
  onWarmup?(method: string, generation: number, of: number): void;
  onPairStart?(event: PairEvent): void;
  onPairDone?(event: PairEvent, record: PairRecord): void;
}

export interface MeasureOutcome {
  measured: number;
  interrupted: boolean;
}

/** The pairs not yet in `store`, in the order they will be measured. */
export function pendingPairs(plan: BenchPlan, store: Pick<ResultStore, 'has'>): PendingPair[] {
  const pending: PendingPair[] = [];
  const m = plan.methods.length;
  for (let run = 1; run <= plan.runs; run++) {
    plan.questions.forEach((question, questionIndex) => {
      for (let k = 0; k < m; k++) {
        const method = plan.methods[(questionIndex + k) % m];
        if (!store.has(method.label, question.id, run)) pending.push({ run, questionIndex, method });
      }
    });
  }
  return pending;
}

export async function measurePending(plan: BenchPlan, store: ResultStore, backend: BenchBackend, events: RunnerEvents = {}, signal?: AbortSignal): Promise<MeasureOutcome> {
  const pending = pendingPairs(plan, store);
  if (pending.length === 0) return { measured: 0, interrupted: false };
  const wanted = plan.methods.filter((method) => pending.some((p) => p.method.label === method.label));
  const runners = new Map<string, MethodRunner>();
  try {
    for (const method of wanted) {
      events.onLoad?.(method.label);
      runners.set(method.label, await backend.createRunner(method, { maxNewTokens: plan.maxNewTokens, temperature: plan.temperature }));
    }
    await warmUp(plan, backend, runners, events, signal);
    let done = 0;
    for (const pair of pending) {
      if (signal?.aborted) return { measured: done, interrupted: true };
      const question = plan.questions[pair.questionIndex];
      const event: PairEvent = { ...pair, question, done, total: pending.length };
      events.onPairStart?.(event);
      const seed = plan.seed + pair.run - 1;
      const turns = await askQuestion(runners.get(pair.method.label)!, question, plan.style, backend.prompts, generationOptions(plan, seed));
      const record: PairRecord = {
        method: pair.method.label,
        question: question.id,
        category: question.category,
        ...(question.subcategory !== undefined && { subcategory: question.subcategory }),
        run: pair.run,
        seed,
        turns,
      };
      store.append(record);
      done++;
      events.onPairDone?.({ ...event, done }, record);
    }
    return { measured: done, interrupted: false };
  } finally {
    for (const runner of runners.values()) await runner.close?.();
  }
}

async function warmUp(plan: BenchPlan, backend: BenchBackend, runners: ReadonlyMap<string, MethodRunner>, events: RunnerEvents, signal?: AbortSignal): Promise<void> {
  if (plan.warmup === 0 || plan.questions.length === 0) return;
  const promptIds = await promptBuilder(plan.style, backend.prompts).next(plan.questions[0].turns[0]);
  for (const [label, runner] of runners) {
    for (let i = 1; i <= plan.warmup; i++) {
      if (signal?.aborted) return;
      events.onWarmup?.(label, i, plan.warmup);
      await runner.generate(promptIds, generationOptions(plan, plan.seed));
    }
  }
}

const generationOptions = (plan: BenchPlan, seed: number): GenerationOptions => ({ maxNewTokens: plan.maxNewTokens, temperature: plan.temperature, seed });
