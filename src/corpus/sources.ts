import { access, constants, readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { UserError } from '../util/errors.js';
import type { CorpusFile, CorpusFormat } from './types.js';

/** Longest suffixes first, so that `.jsonl.gz` wins over a shorter match. */
const FORMAT_BY_SUFFIX: ReadonlyArray<readonly [suffix: string, format: CorpusFormat]> = [
  ['.jsonl.zst', 'jsonl.zst'],
  ['.jsonl.gz', 'jsonl.gz'],
  ['.txt.zst', 'txt.zst'],
  ['.txt.gz', 'txt.gz'],
  ['.jsonl', 'jsonl'],
  ['.txt', 'txt'],
];

/** The accepted file name suffixes, for messages: ".jsonl, .jsonl.gz, …". */
export const CORPUS_SUFFIXES: readonly string[] = ['.jsonl', '.jsonl.gz', '.jsonl.zst', '.txt', '.txt.gz', '.txt.zst'];
const ACCEPTED = `accepted: ${CORPUS_SUFFIXES.join(', ')}`;

/** The corpus format implied by a file name's suffix (case-insensitive), or undefined when it has none we read. */
export function formatOf(filePath: string): CorpusFormat | undefined {
  const name = filePath.toLowerCase();
  return FORMAT_BY_SUFFIX.find(([suffix]) => name.endsWith(suffix))?.[1];
}

/**
 * Turns command-line corpus specs into the files to read, in order: each spec is a file, a directory
 * (searched recursively for files with a corpus suffix) or a glob. Files found through one directory or glob
 * are sorted by path; a file named twice is kept at its first place.
 */
export async function resolveCorpus(specs: string[]): Promise<CorpusFile[]> {
  const files: CorpusFile[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    for (const filePath of await expandSpec(spec)) {
      if (seen.has(filePath)) continue;
      seen.add(filePath);
      files.push(await describeFile(filePath));
    }
  }
  return files;
}

async function expandSpec(spec: string): Promise<string[]> {
  const absolute = path.resolve(spec);
  const info = await statIfExists(absolute, spec);
  if (info?.isDirectory()) return corpusFilesUnder(absolute, spec);
  if (info?.isFile()) {
    if (formatOf(absolute) === undefined) {
      throw new UserError(`unsupported corpus file suffix: ${spec} (${ACCEPTED})`);
    }
    return [absolute];
  }
  if (info) throw new UserError(`corpus path is neither a file nor a directory: ${spec}`);
  // An existing path wins over its reading as a glob, so that file names with `[` or `*` still work.
  if (isDynamicPattern(spec)) return corpusFilesMatching(spec);
  throw new UserError(`corpus file not found: ${spec}`);
}

async function statIfExists(absolute: string, spec: string): Promise<Stats | undefined> {
  try {
    return await stat(absolute);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UserError(`cannot access corpus path ${spec} (${code ?? String(err)})`);
  }
}

async function corpusFilesUnder(directory: string, spec: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(directory, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot read corpus directory ${spec} (${errorCode(err) ?? String(err)})`);
  }
  const candidates = entries.filter((entry) => formatOf(entry) !== undefined).map((entry) => path.join(directory, entry));
  const files: string[] = [];
  for (const candidate of candidates) {
    // stat (not the directory entry) so that symbolic links to files count as files.
    if ((await statIfExists(candidate, candidate))?.isFile()) files.push(candidate);
  }
  if (files.length === 0) throw new UserError(`no corpus files in directory ${spec} (${ACCEPTED})`);
  return sortPaths(files);
}

async function corpusFilesMatching(pattern: string): Promise<string[]> {
  const matches = await glob(pattern, { absolute: true, onlyFiles: true, expandDirectories: false });
  const files = matches.filter((match) => formatOf(match) !== undefined).map((match) => path.resolve(match));
  if (files.length === 0) throw new UserError(`no corpus files match ${pattern} (${ACCEPTED})`);
  return sortPaths(files);
}

async function describeFile(filePath: string): Promise<CorpusFile> {
  try {
    await access(filePath, constants.R_OK);
    const { size } = await stat(filePath);
    return { path: filePath, format: formatOf(filePath)!, bytes: size };
  } catch (err) {
    throw new UserError(`cannot read corpus file ${filePath} (${errorCode(err) ?? String(err)})`);
  }
}

/** Code-unit order: the same on every machine, whatever its locale. */
function sortPaths(paths: string[]): string[] {
  return paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function errorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
