import path from 'node:path';
import type { CorpusFile, ReadOptions } from '../corpus/types.js';
import type { LoadedTokenizer } from '../tokenizer/load.js';
import { countCorpus, type CountProgress, type CountResult } from './parallel-count.js';
import { buildSubset, coverage, rankTokens } from './rank.js';
import { encodeTorchIntList } from './torch-pt.js';
import { countsCsv, freqJson, writeOutputDir } from './output.js';
import { UserError } from '../util/errors.js';
import { createTokenCounter } from '../tokenizer/fast-count.js';

export const MANIFEST_FORMAT = 'fr-spec-vocab/1';

export interface BuildVocabOptions {
  tokenizer: LoadedTokenizer;
  /** How workers load the tokenizer (preset name or folder). */
  tokenizerSpec: string;
  files: CorpusFile[];
  sizes: number[];
  outDir: string;
  force?: boolean;
  workers: number;
  special: 'none' | 'bos';
  route?: 'auto' | 'fast' | 'reference';
  read?: Omit<ReadOptions, 'onBytes'>;
  sets?: string[];
  maxDocs?: number;
  maxTokens?: number;
  evalFiles?: CorpusFile[];
  onProgress?: (stage: 'count' | 'eval', progress: CountProgress) => void;
  signal?: AbortSignal;
  /** Bad lines skipped so far (read by the manifest after counting). */
  badLines?: () => number;
}

export interface SubsetSummary {
  size: number;
  coverage: number;
  evalCoverage?: number;
  /** Stop ids that were not among the `size` most frequent and replaced the least frequent ones. */
  addedStopIds: number[];
}

export interface BuildVocabResult {
  count: CountResult;
  evalCount?: CountResult;
  subsets: SubsetSummary[];
  manifest: Record<string, unknown>;
}

/** Counts the corpus, ranks the vocabulary and writes the subset files atomically into `outDir`. */
export async function buildVocab(options: BuildVocabOptions): Promise<BuildVocabResult> {
  const { tokenizer } = options;
  const info = tokenizer.info;
  const bosId = options.special === 'bos' ? info.bosId : null;
  // Decide the route once here (the 'auto' self-check needs the reference tokenizer), so workers load only what it needs.
  const decided = createTokenCounter(tokenizer, { route: options.route });
  const countOnce = (files: CorpusFile[], stage: 'count' | 'eval', limits: boolean) =>
    countCorpus({
      tokenizer: options.tokenizerSpec,
      vocabSize: info.vocabSize,
      files,
      read: options.read,
      workers: options.workers,
      route: decided.counter.route,
      routeReason: decided.reason,
      bosId,
      maxDocs: limits ? options.maxDocs : undefined,
      maxTokens: limits ? options.maxTokens : undefined,
      onProgress: (p) => options.onProgress?.(stage, p),
      signal: options.signal,
    });

  const count = await countOnce(options.files, 'count', true);
  if (count.documents === 0) {
    const filter = options.sets ? ` with set name ${options.sets.join(' or ')}` : '';
    throw new UserError(`no documents${filter} in the corpus (${options.files.map((f) => displayPath(f.path)).join(', ')})`);
  }
  const evalCount = options.evalFiles ? await countOnce(options.evalFiles, 'eval', false) : undefined;

  const ranked = rankTokens(count.counts);
  const files = new Map<string, string | Uint8Array>();
  const subsets: SubsetSummary[] = [];
  for (const size of options.sizes) {
    const ids = buildSubset(ranked, size, info.stopIds);
    const topIds = new Set(ranked.subarray(0, size));
    subsets.push({
      size,
      coverage: coverage(count.counts, ids),
      evalCoverage: evalCount ? coverage(evalCount.counts, ids) : undefined,
      addedStopIds: info.stopIds.filter((id) => !topIds.has(id)),
    });
    files.set(`freq_${size}.json`, freqJson(ids));
    files.set(`freq_${size}.pt`, encodeTorchIntList(ids, `freq_${size}`));
  }
  files.set('counts.csv', countsCsv(ranked, count.counts, (id) => tokenizer.idToToken(id)));
  const manifest = buildManifest(options, count, evalCount, subsets);
  files.set('manifest.json', JSON.stringify(manifest, null, 2) + '\n');
  await writeOutputDir(options.outDir, files, { force: options.force });
  return { count, evalCount, subsets, manifest };
}

function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return path.isAbsolute(relative) ? file : relative;
}

function corpusSummary(files: CorpusFile[], count: CountResult) {
  return {
    files: files.map((f) => ({ path: displayPath(f.path), format: f.format, bytes: f.bytes })),
    documents: count.documents,
    tokens: count.tokens,
    text_bytes: count.textBytes,
    per_set: Object.fromEntries(
      [...count.perSet.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, t]) => [name, { documents: t.documents, tokens: t.tokens, text_bytes: t.textBytes }]),
    ),
  };
}

function buildManifest(
  options: BuildVocabOptions,
  count: CountResult,
  evalCount: CountResult | undefined,
  subsets: SubsetSummary[],
): Record<string, unknown> {
  const info = options.tokenizer.info;
  return {
    format: MANIFEST_FORMAT,
    created: new Date().toISOString(),
    tokenizer: {
      name: info.name,
      sha256: info.sha256,
      vocab_size: info.vocabSize,
      stop_ids: info.stopIds,
      bos_id: info.bosId,
    },
    counting: {
      special: options.special,
      route: count.route,
      route_reason: count.routeReason ?? null,
      workers: options.workers,
      sets_filter: options.sets ?? null,
      max_docs: options.maxDocs ?? null,
      max_tokens: options.maxTokens ?? null,
      bad_lines_skipped: options.badLines?.() ?? 0,
      seconds: round(count.seconds, 3),
      tokens_per_s: Math.round(count.tokens / count.seconds),
      text_mb_per_s: round(count.textBytes / 1e6 / count.seconds, 3),
    },
    corpus: corpusSummary(options.files, count),
    subsets: subsets.map((s) => ({
      size: s.size,
      json: `freq_${s.size}.json`,
      pt: `freq_${s.size}.pt`,
      coverage: round(s.coverage, 6),
      added_stop_ids: s.addedStopIds,
      ...(s.evalCoverage !== undefined ? { eval_coverage: round(s.evalCoverage, 6) } : {}),
    })),
    ...(evalCount && options.evalFiles ? { eval: corpusSummary(options.evalFiles, evalCount) } : {}),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
