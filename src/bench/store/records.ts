/** The shapes stored in an output folder: bench.json (what was measured, how) and results.jsonl. */
import type { TurnRecord } from '../conversation.js';
import type { DatasetFormat } from '../dataset/formats.js';
import type { PromptStyle } from '../types.js';

export const BENCH_FORMAT = 'fr-spec-bench';
export const BENCH_FORMAT_VERSION = 1;

/** Settings that change what is measured: a folder's results are resumed only with the same ones. */
export interface MeasuredSettings {
  maxNewTokens: number;
  temperature: number;
  seed: number;
  prompt: PromptStyle;
}

export interface BenchMeta {
  format: typeof BENCH_FORMAT;
  version: number;
  model: { dir: string; configSha256: string; source: string };
  dataset: {
    name: string;
    format: DatasetFormat;
    file: string;
    sha256: string;
    fewshot?: { file: string; sha256: string; shots: number };
    /** The categories in the dataset's order. */
    categories: string[];
  };
  settings: MeasuredSettings;
  /** Where the model ran ("cpu", "cuda:0"); one folder never mixes devices. */
  device: string;
  /** Every method measured into this folder, in the order first asked for. */
  methods: string[];
  runs: number;
  warmup: number;
  machine: { cpu: string; cores: number; node: string; platform: string };
  createdAt: string;
  updatedAt: string;
}

/** One method's answer to one question in one run: a line of results.jsonl. */
export interface PairRecord {
  method: string;
  question: string;
  category: string;
  subcategory?: string;
  /** 1-based. */
  run: number;
  seed: number;
  turns: TurnRecord[];
}
