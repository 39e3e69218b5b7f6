/**
 * FR-Spec vocabulary maps: which freq_{r}.json to use for a model and checking that it fits it.
 * `--vocab-map` takes a file, a build-vocab output folder, or a size r; without it, r = 32768.
 * A size is looked up in the model folder's vocab-maps/, then in the repository's
 * vocab-maps/<tokenizer>/ whose manifest names the model's tokenizer (by tokenizer.json's hash).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { REPO_VOCAB_MAPS_DIR } from './paths.js';

export const DEFAULT_SUBSET_SIZE = 32768;

export interface VocabMapModel {
  dir: string;
  /** Rows of the model's LM head. */
  vocabSize: number;
  /** The model's tokenizer's own vocabulary size, when known (it may be below vocabSize: padded heads). */
  tokenizerVocabSize?: number;
}

export interface VocabMap {
  ids: Int32Array;
  /** The file it came from. */
  file: string;
  /** Doubts worth printing that do not stop generation. */
  warnings: string[];
}

interface ManifestTokenizer {
  name?: string;
  sha256?: string;
  vocab_size?: number;
}

export function loadVocabMap(spec: string | undefined, model: VocabMapModel, repoMaps = REPO_VOCAB_MAPS_DIR): VocabMap {
  const file = locate(spec ?? String(DEFAULT_SUBSET_SIZE), model, repoMaps);
  return readVocabMap(file, model);
}

function locate(spec: string, model: VocabMapModel, repoMaps: string): string {
  if (/^\d+$/.test(spec)) return locateSize(Number(spec), model, repoMaps);
  if (spec.endsWith('.pt')) {
    const json = spec.slice(0, -3) + '.json';
    if (existsSync(json)) return json;
    throw new UserError(`vocab map ${spec}: torch .pt files are not read here; pass the .json list build-vocab writes next to it`);
  }
  if (!existsSync(spec)) throw new UserError(`vocab map ${spec} not found (pass a freq_{r}.json file, a build-vocab folder, or a size such as ${DEFAULT_SUBSET_SIZE})`);
  if (statSync(spec).isDirectory()) {
    const inside = join(spec, `freq_${DEFAULT_SUBSET_SIZE}.json`);
    if (!existsSync(inside)) throw new UserError(`vocab map folder ${spec} has no freq_${DEFAULT_SUBSET_SIZE}.json; pass the file you want`);
    return inside;
  }
  return spec;
}

function locateSize(size: number, model: VocabMapModel, repoMaps: string): string {
  if (size < 1 || size > model.vocabSize) throw new UserError(`vocab map size ${size} must be between 1 and the model's vocabulary of ${model.vocabSize}`);
  const name = `freq_${size}.json`;
  const shipped = join(model.dir, 'vocab-maps', name);
  if (existsSync(shipped)) return shipped;
  const sha = tokenizerHash(model.dir);
  if (sha && existsSync(repoMaps)) {
    for (const entry of readdirSync(repoMaps)) {
      const manifest = readManifestTokenizer(join(repoMaps, entry, 'manifest.json'));
      const file = join(repoMaps, entry, name);
      if (manifest?.sha256 === sha && existsSync(file)) return file;
    }
  }
  throw new UserError(`no ${name} for ${model.dir}: none in its vocab-maps/ and none in ${repoMaps} built for its tokenizer; build one with fr-spec build-vocab and pass --vocab-map`);
}

function tokenizerHash(dir: string): string | undefined {
  const file = join(dir, 'tokenizer.json');
  return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : undefined;
}

function readManifestTokenizer(file: string): ManifestTokenizer | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { tokenizer?: ManifestTokenizer };
    return typeof manifest.tokenizer === 'object' && manifest.tokenizer !== null ? manifest.tokenizer : undefined;
  } catch {
    return undefined;
  }
}

export function readVocabMap(file: string, model: VocabMapModel): VocabMap {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UserError(`vocab map ${file} is not a JSON list of token ids (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new UserError(`vocab map ${file} is not a non-empty JSON list of token ids`);
  const warnings: string[] = [];
  const manifest = readManifestTokenizer(join(dirname(file), 'manifest.json'));
  const modelSha = tokenizerHash(model.dir);
  if (manifest?.sha256 && modelSha && manifest.sha256 !== modelSha) {
    const built = `tokenizer ${manifest.name ?? '?'}${manifest.vocab_size ? ` (${manifest.vocab_size} ids)` : ''}`;
    const expected = model.tokenizerVocabSize;
    const mismatched = manifest.vocab_size !== undefined && (expected !== undefined ? manifest.vocab_size !== expected : manifest.vocab_size > model.vocabSize);
    if (mismatched) {
      throw new UserError(`vocab map ${file} was built for ${built}, not for this model's tokenizer (vocabulary of ${expected ?? model.vocabSize})`);
    }
    warnings.push(`vocab map ${basename(file)} was built for ${built}, whose tokenizer.json differs from ${model.dir}'s`);
  }
  const ids = new Int32Array(parsed.length);
  const seen = new Set<number>();
  parsed.forEach((value: unknown, i) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw new UserError(`vocab map ${file}: entry ${i} is not a token id (${JSON.stringify(value)})`);
    if (value < 0 || value >= model.vocabSize) {
      throw new UserError(`vocab map ${file} lists id ${value}, outside the model's vocabulary (0..${model.vocabSize - 1}): it was built for another tokenizer`);
    }
    if (seen.has(value)) throw new UserError(`vocab map ${file} lists id ${value} twice`);
    seen.add(value);
    ids[i] = value;
  });
  return { ids, file, warnings };
}
