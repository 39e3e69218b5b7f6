/**
 * `--dataset` / `--data` → the questions to ask, how to prompt them, and an identity of the files
 * (so a resumed run can tell that its questions have not changed).
 */
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import type { BenchQuestion, PromptStyle } from '../types.js';
import { detectFormat, FORMAT_READERS, type DatasetFormat } from './formats.js';
import { exemplarsFrom, fewShotPrefix } from './gsm8k.js';
import { readJsonlFile, type JsonlFile } from './jsonl.js';

export const NAMED_DATASETS = ['spec-bench', 'humaneval', 'gsm8k', 'mt-bench'] as const;
export type NamedDataset = (typeof NAMED_DATASETS)[number];

/** FR-Spec's HumanEval instruction, as the system message. */
export const HUMANEVAL_SYSTEM = 'Please complete the following Python code without providing any additional tasks such as testing or explanations.';

/** Where each named dataset comes from, for the message when --data is missing. */
const SOURCES: Record<NamedDataset, string> = {
  'spec-bench': "Spec-Bench's data/spec_bench/question.jsonl",
  humaneval: 'a HumanEval question.jsonl ({"task_id", "prompt"} per line)',
  gsm8k: 'a GSM8K jsonl ({"question", "answer"} per line, or EAGLE\'s data/gsm8k/question.jsonl)',
  'mt-bench': "MT-bench's question.jsonl",
};

/** max_new_tokens of each protocol (Spec-Bench 1024; FR-Spec's HumanEval and GSM8K 512). */
const MAX_NEW_TOKENS: Record<DatasetFormat, number> = { 'spec-bench': 1024, 'mt-bench': 1024, humaneval: 512, gsm8k: 512, prompts: 1024 };

export interface DatasetRequest {
  /** A named dataset or a .jsonl path. */
  dataset: string;
  /** The file of a named dataset. */
  data?: string;
  /** GSM8K: a file whose first `shots` items are the exemplars (default: the first `shots` of the data file, which are then not asked). */
  fewshot?: string;
  shots?: number;
  limit?: number;
  /** Only the first n questions of each category (applied before `limit`). */
  perCategory?: number;
}

export interface FileIdentity {
  file: string;
  sha256: string;
}

export interface Dataset {
  /** The named dataset, or the file's base name. */
  name: string;
  format: DatasetFormat;
  source: FileIdentity;
  fewshot?: FileIdentity & { shots: number };
  questions: BenchQuestion[];
  style: PromptStyle;
  /** The protocol's max_new_tokens. */
  maxNewTokens: number;
}

const isNamed = (name: string): name is NamedDataset => (NAMED_DATASETS as readonly string[]).includes(name);

export function loadDataset(request: DatasetRequest): Dataset {
  const { name, file, named } = resolveSource(request);
  const jsonl = readJsonlFile(file);
  const reader = named ? FORMAT_READERS[named] : detectFormat(jsonl.records[0], file);
  const shots = request.shots ?? 8;
  let records = jsonl.records;
  let style: PromptStyle = { kind: 'chat', ...(reader.format === 'humaneval' && { system: HUMANEVAL_SYSTEM }) };
  let fewshot: Dataset['fewshot'];
  if (request.fewshot !== undefined && reader.format !== 'gsm8k') throw new UserError('--fewshot is for GSM8K only');
  if (reader.format === 'gsm8k') {
    const exemplarFile: JsonlFile = request.fewshot ? readJsonlFile(path.resolve(request.fewshot)) : jsonl;
    style = { kind: 'plain', prefix: fewShotPrefix(exemplarsFrom(exemplarFile.records, shots, exemplarFile.path)) };
    fewshot = { file: exemplarFile.path, sha256: exemplarFile.sha256, shots };
    if (!request.fewshot) records = records.slice(shots);
    if (records.length === 0) throw new UserError(`${file}: no questions left after the ${shots} few-shot exemplars; pass --fewshot with a separate exemplar file`);
  }
  const questions = records.map((record) => {
    if (!reader.matches(record.value)) throw new UserError(`${file}:${record.line}: not a ${reader.format} line: expected ${reader.expects}`);
    return reader.toQuestion(record, file);
  });
  checkUniqueIds(questions, file);
  return {
    name,
    format: reader.format,
    source: { file: jsonl.path, sha256: jsonl.sha256 },
    ...(fewshot && { fewshot }),
    questions: firstQuestions(questions, request),
    style,
    maxNewTokens: MAX_NEW_TOKENS[reader.format],
  };
}

function resolveSource(request: DatasetRequest): { name: string; file: string; named?: NamedDataset } {
  const { dataset, data } = request;
  if (isNamed(dataset)) {
    if (!data) throw new UserError(`--dataset ${dataset} needs --data <path>: fr-spec does not ship third-party benchmark data; point it at ${SOURCES[dataset]}`);
    return { name: dataset, file: path.resolve(data), named: dataset };
  }
  if (data) throw new UserError(`--data is for the named datasets (${NAMED_DATASETS.join(', ')}); with a file, give it as --dataset ${dataset}`);
  const looksLikeFile = /\.jsonl$/i.test(dataset) || dataset.includes('/') || dataset.includes(path.sep);
  if (!looksLikeFile) throw new UserError(`unknown dataset "${dataset}": expected ${NAMED_DATASETS.join(', ')} (with --data <path>) or a .jsonl file`);
  const file = path.resolve(dataset);
  return { name: path.basename(file, path.extname(file)), file };
}

function checkUniqueIds(questions: readonly BenchQuestion[], file: string): void {
  const seen = new Set<string>();
  for (const q of questions) {
    if (seen.has(q.id)) throw new UserError(`${file}: the question id ${q.id} appears twice; ids must be unique (results are stored per question)`);
    seen.add(q.id);
  }
}

/**
 * `perCategory` keeps the first n questions of each category and interleaves the categories (one
 * question of each in turn), so a run cut short by time still covers every category evenly.
 */
function firstQuestions(questions: readonly BenchQuestion[], { limit, perCategory }: DatasetRequest): BenchQuestion[] {
  let kept = [...questions];
  if (perCategory !== undefined) {
    const byCategory = new Map<string, BenchQuestion[]>();
    for (const q of questions) {
      const list = byCategory.get(q.category) ?? [];
      if (list.length < perCategory) list.push(q);
      byCategory.set(q.category, list);
    }
    kept = [];
    for (let i = 0; i < perCategory; i++) for (const list of byCategory.values()) if (i < list.length) kept.push(list[i]);
  }
  return limit !== undefined ? kept.slice(0, limit) : kept;
}
