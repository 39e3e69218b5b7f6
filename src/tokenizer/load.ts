import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.js';
import { isPreset, presetFolder, presetNames } from './presets.js';
import type { TokenizerInfo } from './types.js';

export { PRESETS } from './presets.js';

export type JsonObject = { [key: string]: unknown };

/** One entry of tokenizer.json's `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The parts of a Hugging Face tokenizer.json this project reads; the rest stays as parsed. */
export interface TokenizerJson {
  added_tokens: AddedTokenJson[];
  normalizer: JsonObject | null;
  pre_tokenizer: JsonObject | null;
  post_processor: JsonObject | null;
  decoder: JsonObject | null;
  model: JsonObject;
  [key: string]: unknown;
}

export interface LoadedTokenizer {
  info: TokenizerInfo;
  json: TokenizerJson;
  /** Parsed tokenizer_config.json, or {} when the folder has none. */
  config: JsonObject;
  /** Reference ids from @huggingface/tokenizers, without added special tokens (no BOS). */
  encode(text: string): number[];
  /** The vocabulary or added-token string of an id, as written in tokenizer.json. */
  idToToken(id: number): string | undefined;
}

/** Tokens that end a turn or a text in common chat templates; those present count as stop ids. */
const END_OF_TURN_TOKENS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end_of_text|>',
  '<|endoftext|>',
  '<end_of_turn>',
  '<|end|>',
  '<|eom_id|>',
];

/** Loads a tokenizer from a preset name (see PRESETS) or a local folder holding tokenizer.json. */
export async function loadTokenizer(spec: string): Promise<LoadedTokenizer> {
  const { name, dir } = await resolveTokenizerFolder(spec);
  const tokenizerPath = path.join(dir, 'tokenizer.json');
  const tokenizerBytes = await readFile(tokenizerPath);
  const json = asTokenizerJson(parseJson(tokenizerBytes.toString('utf8'), tokenizerPath), tokenizerPath);
  const config = (await readOptionalJsonObject(path.join(dir, 'tokenizer_config.json'))) ?? {};
  const generationConfig = await readOptionalJsonObject(path.join(dir, 'generation_config.json'));

  // Built on first use: worker threads on the fast route never need it, and it costs about a second to build.
  let reference: Tokenizer | undefined;
  const referenceTokenizer = () => (reference ??= createReferenceTokenizer(json, config, tokenizerPath));
  const info: TokenizerInfo = {
    name,
    dir,
    sha256: createHash('sha256').update(tokenizerBytes).digest('hex'),
    vocabSize: vocabSizeOf(json),
    stopIds: stopIdsOf(json, config, generationConfig),
    bosId: specialTokenId(json, config.bos_token),
  };
  return {
    info,
    json,
    config,
    encode: (text) => referenceTokenizer().encode(text, { add_special_tokens: false }).ids,
    idToToken: (id) => referenceTokenizer().id_to_token(id),
  };
}

async function resolveTokenizerFolder(spec: string): Promise<{ name: string; dir: string }> {
  if (isPreset(spec)) return { name: spec, dir: presetFolder(spec) };
  const target = path.resolve(spec);
  const stats = await stat(target).catch(() => null);
  if (!stats) {
    if (looksLikePresetName(spec)) {
      throw new UserError(`unknown tokenizer "${spec}": not a preset (${presetNames().join(', ')}) and no folder of that name`);
    }
    throw new UserError(`tokenizer folder not found: ${target}`);
  }
  if (stats.isFile() && path.basename(target) === 'tokenizer.json') {
    const dir = path.dirname(target);
    return { name: path.basename(dir), dir };
  }
  if (!stats.isDirectory() || !(await isFile(path.join(target, 'tokenizer.json')))) {
    throw new UserError(
      `no tokenizer.json in ${target}: expected a folder with tokenizer.json (and tokenizer_config.json), or a preset (${presetNames().join(', ')})`,
    );
  }
  return { name: path.basename(target), dir: target };
}

function looksLikePresetName(spec: string): boolean {
  return !spec.includes('/') && !spec.includes(path.sep) && !spec.startsWith('.');
}

async function isFile(file: string): Promise<boolean> {
  const stats = await stat(file).catch(() => null);
  return stats !== null && stats.isFile();
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`cannot parse ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function readOptionalJsonObject(file: string): Promise<JsonObject | null> {
  if (!(await isFile(file))) return null;
  const value = parseJson(await readFile(file, 'utf8'), file);
  if (!isJsonObject(value)) throw new UserError(`cannot use ${file}: expected a JSON object`);
  return value;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the shape and fills the optional top-level parts with null, as the reference tokenizer needs them present. */
function asTokenizerJson(value: unknown, file: string): TokenizerJson {
  if (!isJsonObject(value) || !isJsonObject(value.model)) {
    throw new UserError(`${file} is not a Hugging Face tokenizer.json (it has no "model" object)`);
  }
  value.added_tokens ??= [];
  if (!Array.isArray(value.added_tokens)) throw new UserError(`${file}: "added_tokens" must be a list`);
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) value[key] ??= null;
  return value as TokenizerJson;
}

function createReferenceTokenizer(json: TokenizerJson, config: JsonObject, file: string): Tokenizer {
  try {
    return new Tokenizer(json, config);
  } catch (err) {
    throw new UserError(`cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function vocabSizeOf(json: TokenizerJson): number {
  let maxId = -1;
  const vocab = json.model.vocab;
  if (Array.isArray(vocab)) {
    maxId = vocab.length - 1; // Unigram: [piece, score] pairs, id = index
  } else if (isJsonObject(vocab)) {
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  }
  for (const token of json.added_tokens) if (token.id > maxId) maxId = token.id;
  return maxId + 1;
}

/** The id of a token string: added tokens first, then the model vocabulary. */
export function tokenIdOf(json: TokenizerJson, content: string): number | undefined {
  const added = json.added_tokens.find((token) => token.content === content);
  if (added) return added.id;
  const vocab = json.model.vocab;
  if (Array.isArray(vocab)) {
    const index = vocab.findIndex((entry) => Array.isArray(entry) && entry[0] === content);
    return index >= 0 ? index : undefined;
  }
  if (isJsonObject(vocab) && Object.hasOwn(vocab, content)) {
    const id = vocab[content];
    return typeof id === 'number' ? id : undefined;
  }
  return undefined;
}

/** tokenizer_config.json writes special tokens as a string or as {content: string, ...}. */
function specialTokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

function specialTokenId(json: TokenizerJson, value: unknown): number | null {
  const content = specialTokenContent(value);
  return content === null ? null : (tokenIdOf(json, content) ?? null);
}

function stopIdsOf(json: TokenizerJson, config: JsonObject, generationConfig: JsonObject | null): number[] {
  const ids = new Set<number>();
  const eosId = specialTokenId(json, config.eos_token);
  if (eosId !== null) ids.add(eosId);
  for (const token of json.added_tokens) if (END_OF_TURN_TOKENS.includes(token.content)) ids.add(token.id);
  const generationEos = generationConfig?.eos_token_id;
  for (const id of Array.isArray(generationEos) ? generationEos : [generationEos]) {
    if (Number.isInteger(id)) ids.add(id as number);
  }
  return [...ids].sort((a, b) => a - b);
}
