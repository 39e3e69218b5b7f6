/**
 * What the bench needs to know about a model folder before loading anything: its identity (the
 * SHA-256 of config.json, stored with results so one output folder never mixes models), which
 * methods it can run, and which FR-Spec vocabulary subsets it has.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ModelFolder } from '../model/model-folder.js';
import { UserError } from '../util/errors.js';

export interface ModelInfo {
  dir: string;
  configSha256: string;
  /** The checkpoint the target came from. */
  source: string;
  hasEagle: boolean;
  hasDraft: boolean;
  /** FR-Spec subset size → its freq_{r}.json. */
  vocabMaps: Map<number, string>;
}

const VOCAB_MAP_FILE = /^freq_(\d+)\.json$/;

/**
 * FR-Spec subsets come from the model folder's vocab-maps/ and from `extraVocabMaps`, a build-vocab
 * output folder (e.g. the repository's vocab-maps/llama3).
 */
export function readModelInfo(modelDir: string, extraVocabMaps?: string): ModelInfo {
  const dir = path.resolve(modelDir);
  const folder = ModelFolder.open(dir);
  const { config } = folder;
  const vocabMaps = new Map<number, string>();
  for (const relative of config.vocab_maps ?? []) addVocabMap(vocabMaps, folder.path(relative));
  const shipped = folder.path('vocab-maps');
  if (existsSync(shipped)) for (const name of readdirSync(shipped)) addVocabMap(vocabMaps, path.join(shipped, name));
  if (extraVocabMaps !== undefined) {
    const extra = path.resolve(extraVocabMaps);
    if (!existsSync(extra)) throw new UserError(`--vocab-maps ${extraVocabMaps}: no such folder`);
    const files = readdirSync(extra).filter((name) => VOCAB_MAP_FILE.test(name));
    if (files.length === 0) throw new UserError(`--vocab-maps ${extraVocabMaps}: no freq_{r}.json files (make them with fr-spec build-vocab)`);
    // A subset given on the command line wins over the folder's own of the same size.
    for (const name of files) addVocabMap(vocabMaps, path.join(extra, name));
  }
  return {
    dir,
    configSha256: createHash('sha256').update(readFileSync(folder.path('config.json'))).digest('hex'),
    source: config.target.source,
    hasEagle: config.eagle !== undefined,
    hasDraft: config.draft !== undefined,
    vocabMaps,
  };
}

function addVocabMap(maps: Map<number, string>, file: string): void {
  const match = VOCAB_MAP_FILE.exec(path.basename(file));
  if (match && existsSync(file)) maps.set(Number(match[1]), file);
}
