import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { resolveCorpus } from '../corpus/sources.js';
import { loadTokenizer, PRESETS } from '../tokenizer/load.js';
import { buildVocab } from '../vocab/build.js';
import { parseSizes } from '../vocab/rank.js';
import { UserError } from '../util/errors.js';
import { createProgress } from './progress.js';
import { parsePositiveInt } from './parse.js';

const PACKAGE_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The redistributable sample shipped with the project, used when no --corpus is given. */
export const EMBEDDED_CORPUS = path.join(PACKAGE_ROOT, 'corpora');

interface BuildVocabFlags {
  tokenizer: string;
  corpus?: string[];
  sizes: string;
  maxDocs?: number;
  maxTokens?: number;
  sets?: string;
  workers: number;
  special: 'none' | 'bos';
  route: 'auto' | 'fast' | 'reference';
  out?: string;
  eval?: string[];
  skipBadLines?: boolean;
  force?: boolean;
  quiet?: boolean;
}

export function registerBuildVocab(program: Command): void {
  program
    .command('build-vocab')
    .description('count token frequencies over a corpus and write FR-Spec vocabulary subsets (freq_{r}.json/.pt)')
    .option('--tokenizer <preset|dir>', `tokenizer preset (${Object.keys(PRESETS).join(', ')}) or a folder with tokenizer.json`, 'llama3')
    .option('--corpus <file|dir|glob...>', 'corpus files (.jsonl, .jsonl.gz, .jsonl.zst, .txt), folders or globs (default: the embedded sample in corpora/)')
    .option('--sizes <list>', 'comma-separated subset sizes', '8192,16384,32768,65536')
    .option('--max-docs <n>', 'count at most this many documents', parsePositiveInt('--max-docs'))
    .option('--max-tokens <n>', 'stop reading once this many tokens are counted', parsePositiveInt('--max-tokens'))
    .option('--sets <names>', 'only documents whose meta.redpajama_set_name is listed (comma-separated)')
    .option('--workers <n>', 'tokenizer worker threads', parsePositiveInt('--workers'), os.availableParallelism())
    .addOption(new Option('--special <mode>', 'special tokens counted per document: bos adds one BOS like the reference fr.py').choices(['none', 'bos']).default('none'))
    .addOption(new Option('--route <route>', 'counting route: fast (pre-token counting, exact for byte-level BPE), reference (plain encoding), auto').choices(['auto', 'fast', 'reference']).default('auto'))
    .option('--out <dir>', 'output folder (default: vocab-maps/<tokenizer>, or vocab-maps/<tokenizer>-sample for the embedded corpus)')
    .option('--eval <file|dir|glob...>', 'held-out corpus: also report each subset\'s coverage on it')
    .option('--skip-bad-lines', 'count and skip malformed JSONL lines instead of failing')
    .option('--force', 'replace the output folder if it exists')
    .option('--quiet', 'no progress bar and no summary')
    .action(async (flags: BuildVocabFlags) => runBuildVocab(flags));
}

async function runBuildVocab(flags: BuildVocabFlags): Promise<void> {
  const tokenizer = await loadTokenizer(flags.tokenizer);
  const sizes = parseSizes(flags.sizes, tokenizer.info.vocabSize);
  const usingEmbedded = !flags.corpus || flags.corpus.length === 0;
  const files = await resolveCorpus(usingEmbedded ? [EMBEDDED_CORPUS] : flags.corpus!);
  const evalFiles = flags.eval ? await resolveCorpus(flags.eval) : undefined;
  const sets = flags.sets ? parseSetNames(flags.sets) : undefined;
  const outDir = path.resolve(flags.out ?? path.join('vocab-maps', tokenizer.info.name + (usingEmbedded ? '-sample' : '')));

  let badLines = 0;
  const read = {
    sets: sets ? new Set(sets) : undefined,
    skipBadLines: flags.skipBadLines,
    onBadLine: () => {
      badLines++;
    },
  };
  const showProgress = !flags.quiet && process.stderr.isTTY === true;
  const progress = showProgress ? createProgress({ count: totalBytes(files), eval: totalBytes(evalFiles ?? []) }) : undefined;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const result = await buildVocab({
      tokenizer,
      tokenizerSpec: flags.tokenizer,
      files,
      sizes,
      outDir,
      force: flags.force,
      workers: flags.workers,
      special: flags.special,
      route: flags.route,
      read,
      sets,
      maxDocs: flags.maxDocs,
      maxTokens: flags.maxTokens,
      evalFiles,
      badLines: () => badLines,
      onProgress: (stage, p) => progress?.update(stage, p),
      signal: abort.signal,
    });
    progress?.stop();
    if (!flags.quiet) printSummary(result, outDir, badLines);
  } finally {
    progress?.stop();
    process.removeListener('SIGINT', onSigint);
  }
}

function totalBytes(files: { bytes: number }[]): number {
  return files.reduce((sum, f) => sum + f.bytes, 0);
}

function parseSetNames(text: string): string[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError(`--sets: expected comma-separated set names (e.g. RedPajamaGithub,RedPajamaWikipedia), got "${text}"`);
  return names;
}

function printSummary(result: Awaited<ReturnType<typeof buildVocab>>, outDir: string, badLines: number): void {
  const c = result.count;
  const lines = [
    `counted ${c.tokens.toLocaleString('en-US')} tokens in ${c.documents.toLocaleString('en-US')} documents ` +
      `(${(c.textBytes / 1e6).toFixed(2)} MB) in ${c.seconds.toFixed(1)} s: ` +
      `${(c.textBytes / 1e6 / c.seconds).toFixed(2)} MB/s, ${Math.round(c.tokens / c.seconds).toLocaleString('en-US')} tokens/s (${c.route} route)`,
  ];
  if (badLines > 0) lines.push(`skipped ${badLines} malformed line(s)`);
  lines.push('size    coverage' + (result.evalCount ? '  eval coverage' : ''));
  for (const s of result.subsets) {
    const evalPart = s.evalCoverage !== undefined ? `  ${(100 * s.evalCoverage).toFixed(2).padStart(12)}%` : '';
    lines.push(`${String(s.size).padEnd(6)}  ${(100 * s.coverage).toFixed(2).padStart(7)}%${evalPart}`);
  }
  lines.push(`wrote ${path.relative(process.cwd(), outDir) || '.'}/`);
  process.stdout.write(lines.join('\n') + '\n');
}
