/** File formats the corpus readers understand, chosen by file name suffix. */
export type CorpusFormat = 'jsonl' | 'jsonl.gz' | 'jsonl.zst' | 'txt' | 'txt.gz' | 'txt.zst';

export interface CorpusFile {
  /** Absolute path. */
  path: string;
  format: CorpusFormat;
  /** Size on disk in bytes (compressed size for .gz/.zst); used for progress and ETA. */
  bytes: number;
}

/** One document of a SlimPajama-style corpus. */
export interface CorpusDocument {
  text: string;
  /** `meta.redpajama_set_name`, or `"unknown"` when a JSONL line has none, or `"txt"` for text files. */
  setName: string;
  /** Path of the file it came from. */
  file: string;
  /** 1-based line number in that file (1 for .txt documents). */
  line: number;
}

export interface ReadOptions {
  /** Keep only documents whose set name is in here (all when undefined). */
  sets?: ReadonlySet<string>;
  /** Count and skip malformed lines instead of failing on the first one. */
  skipBadLines?: boolean;
  /** Called for each skipped bad line (only with skipBadLines). */
  onBadLine?: (file: string, line: number, reason: string) => void;
  /** Called as bytes of the file on disk are consumed (compressed bytes for .gz/.zst), with the increment. */
  onBytes?: (bytes: number) => void;
}
