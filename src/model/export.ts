/**
 * `fr-spec export`: Hugging Face checkpoints (target, optional EAGLE-1/2 head, optional plain draft
 * model) → a model folder under the contract (docs/model-contract.md), written atomically.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import { assertOutputFolderFree, writeFolderAtomically } from '../util/atomic-folder.js';
import { buildEagleDraftGraph } from './eagle-graph.js';
import { resolveEagleConfig, type EagleArchitecture, type HfEagleConfig } from './eagle-config.js';
import { openHfFolder, readOptionalJson, withContext, type HfFolder } from './hf-folder.js';
import { resolveDecoderConfig, type DecoderArchitecture, type HfDecoderConfig } from './llama-config.js';
import { buildLlamaTargetGraph, EMBEDDING_WEIGHT, type GraphOps } from './llama-graph.js';
import { buildLmHeadGraph } from './lm-head-graph.js';
import {
  CONTRACT_VERSION,
  decoderFacts,
  eagleFacts,
  MODEL_FILES,
  MODEL_FORMAT,
  TOKENIZER_FILES,
  type ModelFolderConfig,
} from './model-folder.js';
import type { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import { ExternalDataFile } from './onnx/external-data.js';
import { readWeight, storeVocabTable, type WeightStorage } from './weight-loader.js';

export interface ExportOptions {
  target: string;
  eagle?: string;
  draft?: string;
  out: string;
  /** The graphs' float type: weights as computed with, hidden states, K/V. */
  dtype: FloatDType;
  /** Float type the weights are stored in; default `dtype`. float16 under a float32 `dtype` halves the files. */
  weightDtype?: FloatDType;
  /** Store embedding tables and LM heads as int8 rows with per-row scales. Default 'none'. */
  quantizeVocab?: 'none' | 'int8';
  /** Operators of the decoder graphs (llama-graph.ts GraphOps). Default 'fused'. */
  ops?: GraphOps;
  /** A build-vocab output folder whose files are copied into `vocab-maps/`. */
  vocabMaps?: string;
  force?: boolean;
  /** One line per step, for a progress display. */
  onProgress?: (line: string) => void;
}

export interface ExportResult {
  outDir: string;
  config: ModelFolderConfig;
  /** Every file written, relative to outDir, with its size. */
  files: { name: string; bytes: number }[];
}

interface DecoderSource {
  folder: HfFolder;
  arch: DecoderArchitecture;
  modelType: string;
}

interface EagleSource {
  folder: HfFolder;
  eagle: EagleArchitecture;
}

const CREATED_BY = 'fr-spec 0.1.0 export';

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  const outDir = resolve(options.out);
  assertOutputFolderFree(options.out, options.force);
  // Read and check every config before the slow part, so mistakes fail in a second.
  const target = openDecoder(options.target, '--target');
  const eagle = options.eagle ? openEagle(options.eagle, target.arch) : undefined;
  const draft = options.draft ? openDecoder(options.draft, '--draft') : undefined;
  if (options.vocabMaps && !isFolder(options.vocabMaps)) throw new UserError(`--vocab-maps ${options.vocabMaps}: no such folder`);
  const { dtype } = options;
  const ops = options.ops ?? 'fused';
  const storage = weightStorage(options);
  const progress = options.onProgress ?? (() => {});

  const config = await writeFolderAtomically(options.out, options.force, async (dir) => {
    // Every graph's weights go to one file in which each distinct tensor is stored once: the
    // embedding and LM head that the graphs share, and the head rows subset heads read.
    const weightsFile = new ExternalDataFile(join(dir, MODEL_FILES.weights));
    const save = (file: string, label: string, build: () => GraphBuilder) => {
      progress(`writing ${file}`);
      withContext(label, build).save(join(dir, file), { sharedData: weightsFile });
    };
    try {
      save(MODEL_FILES.target, `--target ${options.target}`, () => buildLlamaTargetGraph(target.arch, target.folder.checkpoint, { dtype, storage, role: 'target', ops }));
      save(MODEL_FILES.lmHead, `--target ${options.target}`, () => buildFullHead(target, dtype, storage));
      if (eagle) {
        save(MODEL_FILES.eagle, `--eagle ${options.eagle}`, () => buildEagleDraftGraph(eagle.eagle, eagle.folder.checkpoint, target.folder.checkpoint, { dtype, storage, ops }));
      }
      if (draft) {
        save(MODEL_FILES.draft, `--draft ${options.draft}`, () => buildLlamaTargetGraph(draft.arch, draft.folder.checkpoint, { dtype, storage, role: 'draft', ops }));
      }
    } finally {
      weightsFile.close();
    }
    const tokenizerFiles = copyTokenizerFiles(target.folder.dir, dir);
    const vocabMaps = options.vocabMaps ? copyVocabMaps(options.vocabMaps, join(dir, MODEL_FILES.vocabMaps)) : [];
    const folderConfig = describeFolder(dtype, ops, storage, target, eagle, draft, tokenizerFiles, vocabMaps);
    writeJson(join(dir, MODEL_FILES.config), folderConfig);
    return folderConfig;
  });
  return { outDir, config, files: listFiles(outDir) };
}

function openDecoder(dir: string, role: string): DecoderSource {
  const folder = openHfFolder(dir, role);
  const config = folder.config as unknown as HfDecoderConfig;
  const arch = withContext(`${role} ${dir}`, () => resolveDecoderConfig(config, 'config.json'));
  return { folder, arch, modelType: config.model_type ?? 'llama' };
}

function openEagle(dir: string, target: DecoderArchitecture): EagleSource {
  const folder = openHfFolder(dir, '--eagle');
  return withContext(`--eagle ${dir}`, () => {
    const { checkpoint } = folder;
    if (checkpoint.names().some((name) => name.startsWith('midlayer.'))) throw new UserError('this is an EAGLE-3 head (midlayer.* weights); only EAGLE-1/2 heads are supported');
    if (!checkpoint.has('fc.weight')) throw new UserError('not an EAGLE-1/2 head: the checkpoint has no fc.weight');
    return { folder, eagle: resolveEagleConfig(folder.config as HfEagleConfig, target, 'config.json') };
  });
}

function weightStorage(options: ExportOptions): WeightStorage {
  const storage: WeightStorage = { dtype: options.weightDtype ?? options.dtype, vocabTables: options.quantizeVocab === 'int8' ? 'int8' : 'float' };
  if (storage.dtype === 'float32' && options.dtype === 'float16') throw new UserError('--weight-dtype fp32 with --dtype fp16 would store weights at a precision the graphs cannot use; pick --weight-dtype fp16');
  return storage;
}

/** The target's LM head rows [V,d]: `lm_head.weight`, or the embedding table when tied. */
function buildFullHead(target: DecoderSource, dtype: FloatDType, storage: WeightStorage): GraphBuilder {
  const { arch } = target;
  const name = arch.tieWordEmbeddings ? EMBEDDING_WEIGHT : 'lm_head.weight';
  const rows = readWeight(target.folder.checkpoint, name, [arch.vocabSize, arch.hiddenSize]);
  return buildLmHeadGraph({ dtype, hiddenSize: arch.hiddenSize, weights: storeVocabTable(rows, arch.vocabSize, arch.hiddenSize, storage) });
}

function copyTokenizerFiles(from: string, to: string): string[] {
  const copied: string[] = [];
  for (const file of TOKENIZER_FILES) {
    if (!existsSync(join(from, file))) continue;
    copyFileSync(join(from, file), join(to, file));
    copied.push(file);
  }
  return copied;
}

/** Copies the folder's plain files; returns the subsets (freq_{r}.json) as folder-relative paths. */
function copyVocabMaps(from: string, to: string): string[] {
  const files = readdirSync(from).filter((name) => statSync(join(from, name)).isFile());
  const subsets = files.filter((name) => /^freq_\d+\.json$/.test(name));
  if (subsets.length === 0) throw new UserError(`--vocab-maps ${from}: no freq_{r}.json files (run fr-spec build-vocab)`);
  mkdirSync(to);
  for (const name of files) copyFileSync(join(from, name), join(to, name));
  const size = (name: string) => Number(/\d+/.exec(name)![0]);
  return subsets.sort((a, b) => size(a) - size(b)).map((name) => `${MODEL_FILES.vocabMaps}/${name}`);
}

function describeFolder(
  dtype: FloatDType,
  ops: GraphOps,
  storage: WeightStorage,
  target: DecoderSource,
  eagle: EagleSource | undefined,
  draft: DecoderSource | undefined,
  tokenizerFiles: string[],
  vocabMaps: string[],
): ModelFolderConfig {
  const { arch } = target;
  const generation = readOptionalJson(target.folder.dir, 'generation_config.json');
  return {
    format: MODEL_FORMAT,
    contract_version: CONTRACT_VERSION,
    created_by: CREATED_BY,
    dtype,
    ops,
    vocab_size: arch.vocabSize,
    hidden_size: arch.hiddenSize,
    target: { file: MODEL_FILES.target, source: target.folder.name, architecture: decoderFacts(target.modelType, arch) },
    weights: { file: MODEL_FILES.weights, dtype: storage.dtype, vocab_tables: storage.vocabTables },
    lm_head: { file: MODEL_FILES.lmHead, vocab_size: arch.vocabSize, hidden_size: arch.hiddenSize },
    ...(eagle && { eagle: { file: MODEL_FILES.eagle, source: eagle.folder.name, architecture: eagleFacts(eagle.eagle) } }),
    ...(draft && { draft: { file: MODEL_FILES.draft, source: draft.folder.name, architecture: decoderFacts(draft.modelType, draft.arch) } }),
    tokenizer_files: tokenizerFiles,
    bos_token_id: tokenIds(generation?.bos_token_id ?? target.folder.config.bos_token_id)[0] ?? null,
    eos_token_ids: tokenIds(generation?.eos_token_id ?? target.folder.config.eos_token_id),
    vocab_maps: vocabMaps,
  };
}

/** A config's token id field: a number, a list of numbers, or absent. */
function tokenIds(value: unknown): number[] {
  const values = Array.isArray(value) ? value : [value];
  return values.filter((v): v is number => Number.isSafeInteger(v));
}

function isFolder(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Files under `dir`, recursively, relative to it, sorted. */
function listFiles(dir: string, prefix = ''): { name: string; bytes: number }[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const name = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? listFiles(dir, name) : [{ name, bytes: statSync(join(dir, name)).size }];
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}
