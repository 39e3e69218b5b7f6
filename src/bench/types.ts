/**
 * The seams of `fr-spec bench`: what a benchmark question is, what the bench asks of a decoding
 * method, and what it gets back. The decoding engine plugs in through `BenchBackend`
 * (src/bench/engine-adapter.ts); tests plug in fakes.
 */
import type { EngineChoice } from '../engine/engine.js';
import type { DecodeAttention } from '../model/fused/gqa-decode.js';

/** One benchmark item: one or more user turns, asked in order in one conversation. */
export interface BenchQuestion {
  /** Unique within the dataset (question_id, task_id, or the line number). */
  id: string;
  /** The reporting group: one table row per category. */
  category: string;
  /** The category the file gave, when the reporting group merges several (Spec-Bench's mt_bench). */
  subcategory?: string;
  turns: string[];
}

/** How a question's turns become token ids. */
export type PromptStyle =
  /** The model's chat template, with an optional system message; turns are a conversation. */
  | { kind: 'chat'; system?: string }
  /** Plain text with no template and no special tokens (GSM8K): `prefix + turn`. */
  | { kind: 'plain'; prefix: string };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Tokenization, delegated to the model's tokenizer. Neither function adds special tokens beyond
 * what the chat template itself writes (Spec-Bench and FR-Spec tokenize with add_special_tokens=False).
 */
export interface PromptEncoder {
  /** The chat template over `messages`, ending with the assistant's generation prompt, as ids. */
  encodeChat(messages: readonly ChatMessage[]): Promise<number[]> | number[];
  /** Plain text as ids (no BOS). */
  encodePlain(text: string): Promise<number[]> | number[];
}

export type MethodKind = 'vanilla' | 'sps' | 'eagle2' | 'fr-spec' | 'ouroboros';

/** A method as named on the command line, e.g. `fr-spec:32768`. */
export interface MethodSpec {
  /** The name in tables and result files: `vanilla`, `eagle2`, `fr-spec:32768`, … */
  label: string;
  method: MethodKind;
  /** fr-spec only: the subset size r. */
  vocabSize?: number;
  /** fr-spec only: the freq_{r}.json file with the subset's ids. */
  vocabFile?: string;
}

export interface GenerationOptions {
  maxNewTokens: number;
  /** 0 is greedy. */
  temperature: number;
  seed: number;
}

export interface GenerationResult {
  /** The generated ids (a stop id, when one ended the generation, included). */
  tokenIds: number[];
  /** The generated text, special tokens left out: what the next turn's conversation carries. */
  text: string;
  /** Tokens generated (Spec-Bench's new_tokens). */
  newTokens: number;
  /** Wall time of the whole generation, prefill included, tokenization and detokenization not. */
  wallSeconds: number;
  /** Per decoding step, tokens committed: accepted drafts + 1 (all 1 for vanilla). */
  acceptLengths: number[];
  /** Forward passes of the target model, prefill included. */
  targetForwards: number;
}

/** One decoding method, loaded and ready: the bench calls `generate` once per turn. */
export interface MethodRunner {
  readonly name: string;
  generate(promptIds: readonly number[], options: GenerationOptions): Promise<GenerationResult>;
  close?(): Promise<void>;
}

export interface RunnerOptions {
  /** What the engine needs no more of than this many new tokens (buffers sized ahead). */
  maxNewTokens: number;
  temperature: number;
}

export type MethodRunnerFactory = (spec: MethodSpec, options: RunnerOptions) => Promise<MethodRunner>;

/** A model opened for benchmarking: its tokenizer and a way to load each method over it. */
export interface BenchBackend {
  /** Where the model runs, in words (e.g. "cpu", "cuda:0"). */
  readonly device: string;
  readonly prompts: PromptEncoder;
  readonly createRunner: MethodRunnerFactory;
  close(): Promise<void>;
}

export interface BackendRequest {
  modelDir: string;
  ep: 'cuda' | 'cpu' | 'auto';
  engine?: EngineChoice;
  /** vanilla's one-token decode steps (MethodSettings.decodeAttention); default graph. */
  decodeAttention?: DecodeAttention;
  /** Fused vanilla: reserved cache rows (MethodSettings.reserveRows). */
  reserveRows?: boolean;
  /** Doubts worth a line on stderr that do not stop the run. */
  onWarning?: (message: string) => void;
}

export type OpenBackend = (request: BackendRequest) => Promise<BenchBackend>;
