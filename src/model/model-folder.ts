/**
 * The model folder of the contract (docs/model-contract.md): file names, the `config.json` that
 * describes the folder, and reading it back with clear errors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import type { EagleArchitecture } from './eagle-config.js';
import type { DecoderArchitecture } from './llama-config.js';
import type { FloatDType } from './onnx/dtypes.js';
import type { RopeScaling } from './onnx/rope.js';

export const MODEL_FORMAT = 'fr-spec-model';
/**
 * Bumped on any change a reader of an older folder could misread; additions keep it. Version 2 added
 * weight storage narrower than `dtype` and int8 vocabulary tables (docs/model-contract.md §2).
 */
export const CONTRACT_VERSION = 2;
/** Versions this reader understands: version 1 folders are version 2 folders without `weights`. */
export const READABLE_CONTRACT_VERSIONS: readonly number[] = [1, 2];

export const MODEL_FILES = {
  config: 'config.json',
  target: 'target.onnx',
  eagle: 'eagle.onnx',
  draft: 'draft.onnx',
  lmHead: 'lm_head.onnx',
  weights: 'weights.data',
  vocabMaps: 'vocab-maps',
} as const;

/** Tokenizer files copied from the target checkpoint when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
] as const;

/** Architecture facts of a decoder graph (target or plain draft), snake_case as in HF configs. */
export interface DecoderFacts {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling;
  tie_word_embeddings: boolean;
  /** The checkpoint's context length, when its config.json gives it. */
  max_position_embeddings?: number;
}

export interface EagleFacts {
  hidden_size: number;
  intermediate_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling;
  fc_bias: boolean;
  qkv_bias: boolean;
}

/** How the graphs' weights are stored (§2): the graphs convert them to `dtype` when they are loaded. */
export interface WeightsFacts {
  /** The ONNX external data file all graphs share. */
  file: string;
  /** Float type of the stored weights: `dtype`, or float16 under a float32 `dtype`. */
  dtype: FloatDType;
  /** Embedding tables and LM heads [V, d]: `float` (in `weights.dtype`) or `int8` (per-row scales). */
  vocab_tables: 'float' | 'int8';
}

interface GraphEntry<Facts> {
  file: string;
  /** The checkpoint folder's name it was exported from. */
  source: string;
  architecture: Facts;
}

export interface ModelFolderConfig {
  format: typeof MODEL_FORMAT;
  contract_version: number;
  created_by: string;
  /** Float type of weights, hidden states and K/V in every graph (masks and log-probs are float32). */
  dtype: FloatDType;
  /** The decoder graphs' operators (GraphOps); absent in folders exported before the option: 'standard'. */
  ops?: 'standard' | 'fused';
  vocab_size: number;
  hidden_size: number;
  target: GraphEntry<DecoderFacts>;
  /** Absent in version 1 folders: weights in `dtype`, vocabulary tables as floats. */
  weights?: WeightsFacts;
  /** The target's LM head as a graph of its own (the draft head of EAGLE-2 and FR-Spec). */
  lm_head: { file: string; vocab_size: number; hidden_size: number };
  eagle?: GraphEntry<EagleFacts>;
  draft?: GraphEntry<DecoderFacts>;
  tokenizer_files: string[];
  bos_token_id: number | null;
  /** Ids that end generation: generation_config.json's eos_token_id, else config.json's. */
  eos_token_ids: number[];
  /** FR-Spec subsets shipped in the folder, relative paths (e.g. vocab-maps/freq_32768.json). */
  vocab_maps: string[];
}

export function decoderFacts(modelType: string, arch: DecoderArchitecture): DecoderFacts {
  return {
    model_type: modelType,
    hidden_size: arch.hiddenSize,
    intermediate_size: arch.intermediateSize,
    num_layers: arch.numLayers,
    num_heads: arch.numHeads,
    num_kv_heads: arch.numKvHeads,
    head_dim: arch.headDim,
    vocab_size: arch.vocabSize,
    rms_norm_eps: arch.rmsNormEps,
    rope_theta: arch.ropeTheta,
    rope_scaling: arch.ropeScaling,
    tie_word_embeddings: arch.tieWordEmbeddings,
    ...(arch.maxPositionEmbeddings !== undefined && { max_position_embeddings: arch.maxPositionEmbeddings }),
  };
}

export function eagleFacts(eagle: EagleArchitecture): EagleFacts {
  const { layers } = eagle;
  return {
    hidden_size: layers.hiddenSize,
    intermediate_size: layers.intermediateSize,
    num_layers: layers.numLayers,
    num_heads: layers.numHeads,
    num_kv_heads: layers.numKvHeads,
    head_dim: layers.headDim,
    rms_norm_eps: layers.rmsNormEps,
    rope_theta: layers.ropeTheta,
    rope_scaling: layers.ropeScaling,
    fc_bias: eagle.fcBias,
    qkv_bias: layers.qkvBias,
  };
}

/** A model folder whose config.json has been read and checked. */
export class ModelFolder {
  private constructor(
    readonly dir: string,
    readonly config: ModelFolderConfig,
  ) {}

  static open(dir: string): ModelFolder {
    const configPath = join(dir, MODEL_FILES.config);
    if (!existsSync(configPath)) throw new UserError(`${dir}: not a model folder (no ${MODEL_FILES.config}); create one with fr-spec export`);
    let config: ModelFolderConfig;
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8')) as ModelFolderConfig;
    } catch (error) {
      throw new UserError(`${configPath}: not valid JSON (${(error as Error).message})`);
    }
    checkConfig(configPath, config);
    const folder = new ModelFolder(dir, config);
    for (const entry of [config.target, config.lm_head, config.eagle, config.draft, config.weights]) {
      if (entry && !existsSync(folder.path(entry.file))) throw new UserError(`${dir}: ${entry.file} is missing`);
    }
    return folder;
  }

  path(file: string): string {
    return join(this.dir, file);
  }
}

function checkConfig(configPath: string, config: ModelFolderConfig): void {
  if (typeof config !== 'object' || config === null || config.format !== MODEL_FORMAT) {
    throw new UserError(`${configPath}: not an fr-spec model folder config (format is not "${MODEL_FORMAT}"); is this a Hugging Face folder? Run fr-spec export on it`);
  }
  if (!READABLE_CONTRACT_VERSIONS.includes(config.contract_version)) {
    throw new UserError(`${configPath}: contract_version ${String(config.contract_version)} is not supported by this fr-spec (it reads versions ${READABLE_CONTRACT_VERSIONS.join(' and ')}); re-export the model`);
  }
  if (config.dtype !== 'float16' && config.dtype !== 'float32') throw new UserError(`${configPath}: dtype must be float16 or float32`);
  if (config.ops !== undefined && config.ops !== 'standard' && config.ops !== 'fused') throw new UserError(`${configPath}: ops must be standard or fused, not ${JSON.stringify(config.ops)}`);
  const { weights } = config;
  if (weights !== undefined) {
    const valid = typeof weights === 'object' && weights !== null && (weights.dtype === 'float16' || weights.dtype === config.dtype) && (weights.vocab_tables === 'float' || weights.vocab_tables === 'int8');
    if (!valid) throw new UserError(`${configPath}: weights must give dtype (float16, or float32 under a float32 dtype) and vocab_tables (float or int8)`);
  }
  if (!config.target?.file || !config.lm_head?.file) throw new UserError(`${configPath}: target and lm_head entries are required`);
}
