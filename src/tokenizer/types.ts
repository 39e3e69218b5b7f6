/** What identifies a tokenizer in manifests and vocab maps. */
export interface TokenizerInfo {
  /** Preset name (e.g. "llama3") or the folder's base name. */
  name: string;
  /** Folder holding tokenizer.json (+ tokenizer_config.json). */
  dir: string;
  /** SHA-256 (hex) of tokenizer.json's bytes. */
  sha256: string;
  /** 1 + the largest token id of the model vocabulary and the added tokens (128,256 for Llama-3). */
  vocabSize: number;
  /** Ids that end generation: eos_token of tokenizer_config.json plus end-of-turn tokens present in the vocabulary. */
  stopIds: number[];
  /** bos_token id, or null when the tokenizer has none. */
  bosId: number | null;
}

/** Counts token occurrences of documents, exactly as the reference tokenizer would encode them. */
export interface TokenCounter {
  /** Which route counts: 'fast' (pre-token counting + BPE once per distinct piece) or 'reference' (plain encode). */
  readonly route: 'fast' | 'reference';
  /** Adds one document's tokens (no special tokens added); returns how many tokens it has. */
  add(text: string): number;
  /** Makes `counts` complete (the fast route defers BPE of pending pieces until a flush). */
  flush(): void;
  /** Occurrences per token id, length vocabSize. Complete only after flush(). */
  readonly counts: Float64Array;
}
