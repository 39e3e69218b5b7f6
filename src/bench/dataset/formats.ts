/**
 * The record formats `fr-spec bench` reads, one reader per format: which fields a line must have
 * and how it becomes a BenchQuestion.
 */
import { UserError } from '../../util/errors.js';
import type { BenchQuestion } from '../types.js';
import type { JsonlRecord } from './jsonl.js';

export type DatasetFormat = 'spec-bench' | 'mt-bench' | 'humaneval' | 'gsm8k' | 'prompts';

/** The category of the aggregate row; no question may use it. */
export const ALL_CATEGORY = 'all';

/** Spec-Bench's multi-turn subtask: these eight MT-bench categories are reported as one row. */
export const MT_BENCH_CATEGORIES = ['writing', 'roleplay', 'reasoning', 'math', 'coding', 'extraction', 'stem', 'humanities'];
export const SPEC_BENCH_MT_GROUP = 'mt_bench';

export interface FormatReader {
  format: DatasetFormat;
  /** The fields a line must have, for messages. */
  expects: string;
  matches(value: Record<string, unknown>): boolean;
  toQuestion(record: JsonlRecord, file: string): BenchQuestion;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function idOf(value: Record<string, unknown>, line: number, ...fields: string[]): string {
  for (const field of fields) {
    const v = value[field];
    if (isString(v) || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  }
  return `line-${line}`;
}

function turnsOf(record: JsonlRecord, file: string): string[] {
  const { turns } = record.value;
  if (!isStringArray(turns) || turns.length === 0 || turns.some((t) => t.trim() === '')) {
    throw new UserError(`${file}:${record.line}: "turns" must be a non-empty array of non-empty strings`);
  }
  return turns;
}

function categoryOf(record: JsonlRecord, file: string, fallback: string): string {
  const { category } = record.value;
  if (category === undefined) return fallback;
  if (!isString(category) || category.trim() === '') throw new UserError(`${file}:${record.line}: "category" must be a non-empty string`);
  if (category === ALL_CATEGORY) throw new UserError(`${file}:${record.line}: the category "${ALL_CATEGORY}" is reserved for the row over all questions; rename it`);
  return category;
}

const hasTurns = (v: Record<string, unknown>) => Array.isArray(v.turns);

/** Spec-Bench's question.jsonl: {question_id, category, turns}; MT-bench's categories merge into mt_bench. */
const specBench: FormatReader = {
  format: 'spec-bench',
  expects: '"question_id", "category" and "turns" (Spec-Bench\'s question.jsonl)',
  matches: (v) => hasTurns(v) && v.category !== undefined,
  toQuestion(record, file) {
    const category = categoryOf(record, file, 'default');
    const merged = MT_BENCH_CATEGORIES.includes(category);
    return {
      id: idOf(record.value, record.line, 'question_id'),
      category: merged ? SPEC_BENCH_MT_GROUP : category,
      ...(merged && { subcategory: category }),
      turns: turnsOf(record, file),
    };
  },
};

/** MT-bench's question.jsonl: the same shape, every category its own row. */
const mtBench: FormatReader = {
  format: 'mt-bench',
  expects: '"question_id", "category" and "turns" (MT-bench\'s question.jsonl)',
  matches: (v) => hasTurns(v) && v.category !== undefined,
  toQuestion: (record, file) => ({
    id: idOf(record.value, record.line, 'question_id'),
    category: categoryOf(record, file, 'default'),
    turns: turnsOf(record, file),
  }),
};

/** HumanEval: {task_id, prompt, …}; the prompt is the code to complete. */
const humanEval: FormatReader = {
  format: 'humaneval',
  expects: '"task_id" and "prompt" (HumanEval)',
  matches: (v) => isString(v.task_id) && isString(v.prompt),
  toQuestion: (record, file) => ({
    id: idOf(record.value, record.line, 'task_id'),
    category: categoryOf(record, file, 'code'),
    turns: [record.value.prompt as string],
  }),
};

/** GSM8K as published ({question, answer}) or as EAGLE's copy ({question_id, turns, reference}). */
const gsm8k: FormatReader = {
  format: 'gsm8k',
  expects: '"question" and "answer" (GSM8K), or "turns" and "reference" (EAGLE\'s gsm8k question.jsonl)',
  matches: (v) => (isString(v.question) && isString(v.answer)) || (hasTurns(v) && isStringArray(v.reference)),
  toQuestion: (record, file) => ({
    id: idOf(record.value, record.line, 'question_id', 'id'),
    category: categoryOf(record, file, 'gsm8k'),
    // The plain-text protocol asks "Q: …\nA:"; the few-shot prefix goes before it.
    turns: [questionBlock(gsm8kItem(record, file).question)],
  }),
};

/** Any JSONL with "turns" (a conversation) or "prompt" (one turn); "category" and an id are optional. */
const prompts: FormatReader = {
  format: 'prompts',
  expects: '"turns" (an array of strings) or "prompt" (a string)',
  matches: (v) => hasTurns(v) || isString(v.prompt),
  toQuestion(record, file) {
    const { value } = record;
    const turns = hasTurns(value) ? turnsOf(record, file) : [value.prompt as string];
    if (turns[0].trim() === '') throw new UserError(`${file}:${record.line}: "prompt" is empty`);
    return { id: idOf(value, record.line, 'question_id', 'id', 'task_id'), category: categoryOf(record, file, 'default'), turns };
  },
};

export const FORMAT_READERS: Readonly<Record<DatasetFormat, FormatReader>> = {
  'spec-bench': specBench,
  'mt-bench': mtBench,
  humaneval: humanEval,
  gsm8k,
  prompts,
};

/** The format of a file given by path: the first reader, most specific first, that its first line fits. */
export function detectFormat(first: JsonlRecord, file: string): FormatReader {
  for (const reader of [humanEval, gsm8k, prompts]) if (reader.matches(first.value)) return reader;
  const fields = Object.keys(first.value).slice(0, 8).join(', ') || 'none';
  throw new UserError(
    `${file}: unknown dataset format (line ${first.line} has the fields ${fields}); expected Spec-Bench/MT-bench {"question_id", "category", "turns"}, ` +
      'HumanEval {"task_id", "prompt"}, GSM8K {"question", "answer"}, or any JSONL with "turns" or "prompt"',
  );
}

export function questionBlock(question: string): string {
  return `Q: ${question.trim()}\nA:`;
}

export interface Gsm8kItem {
  question: string;
  /** The reference solution: worked steps with <<calculator>> notes, then "#### answer". */
  solution?: string;
}

export function gsm8kItem(record: JsonlRecord, file: string): Gsm8kItem {
  const { value } = record;
  if (isString(value.question)) return { question: value.question, solution: isString(value.answer) ? value.answer : undefined };
  const question = turnsOf(record, file)[0];
  const reference = isStringArray(value.reference) ? value.reference[0] : undefined;
  return { question, solution: reference };
}
