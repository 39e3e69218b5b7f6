/**
 * Reads a Hugging Face `config.json` of the Llama / Qwen2 families into the few numbers the graph
 * builder needs, with the families' defaults and clear errors for what is not supported.
 */
import { UserError } from '../util/errors.js';
import type { RopeScaling } from './onnx/rope.js';

/** The config.json fields that matter (snake_case as Hugging Face writes them). */
export interface HfDecoderConfig {
  model_type?: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number | null;
  rms_norm_eps: number;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  /** transformers 5.x: `{rope_theta, rope_type, ...scaling fields}` in place of rope_theta/rope_scaling. */
  rope_parameters?: Record<string, unknown> | null;
  vocab_size: number;
  max_position_embeddings?: number;
  tie_word_embeddings?: boolean;
  attention_bias?: boolean;
  mlp_bias?: boolean;
  /** Qwen2: sliding-window attention (unsupported when on). */
  use_sliding_window?: boolean;
  /** transformers 5.x: the attention kind per layer ('full_attention' is the only one supported). */
  layer_types?: string[];
}

export interface DecoderArchitecture {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Biases on the q/k/v projections (always on in Qwen2, `attention_bias` in Llama). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama's `attention_bias` covers it; Qwen2 has none). */
  outputBias: boolean;
  /** The context length the model was built for, when config.json gives it. */
  maxPositionEmbeddings?: number;
}

const SUPPORTED_MODEL_TYPES = new Set(['llama', 'qwen2']);

function positiveInteger(config: HfDecoderConfig, key: keyof HfDecoderConfig, label: string): number {
  const value = config[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new UserError(`${label}: ${key} must be a positive integer, found ${JSON.stringify(value)}`);
  }
  return value;
}

function positiveNumber(value: unknown, key: string, label: string): number {
  if (typeof value !== 'number' || !(value > 0)) throw new UserError(`${label}: ${key} must be a positive number, found ${JSON.stringify(value)}`);
  return value;
}

export function parseRopeScaling(raw: Record<string, unknown> | null | undefined, label: string): RopeScaling {
  if (!raw) return { type: 'default' };
  const type = raw.rope_type ?? raw.type;
  const number = (key: string) => positiveNumber(raw[key], `rope_scaling.${key}`, label);
  switch (type) {
    case undefined:
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: number('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: number('factor'),
        lowFreqFactor: number('low_freq_factor'),
        highFreqFactor: number('high_freq_factor'),
        originalMaxPositionEmbeddings: number('original_max_position_embeddings'),
      };
    default:
      throw new UserError(`${label}: rope_scaling type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`);
  }
}

/**
 * RoPE base and scaling from either layout: transformers 4.x writes top-level `rope_theta` and
 * `rope_scaling`; transformers 5.x folds both into `rope_parameters`.
 */
export function resolveRope(config: Pick<HfDecoderConfig, 'rope_theta' | 'rope_scaling' | 'rope_parameters'>, label: string): { theta: number; scaling: RopeScaling } {
  const parameters = config.rope_parameters;
  if (parameters) {
    return {
      theta: positiveNumber(parameters.rope_theta ?? config.rope_theta ?? 10000, 'rope_parameters.rope_theta', label),
      scaling: parseRopeScaling(parameters, label),
    };
  }
  return { theta: positiveNumber(config.rope_theta ?? 10000, 'rope_theta', label), scaling: parseRopeScaling(config.rope_scaling, label) };
}

function rejectSlidingWindow(config: HfDecoderConfig, label: string): void {
  const windowed = config.layer_types?.find((type) => type !== 'full_attention');
  if (config.use_sliding_window || windowed !== undefined) {
    throw new UserError(`${label}: sliding-window attention is not supported${windowed ? ` (layer_types has ${JSON.stringify(windowed)})` : ''}`);
  }
}

export function resolveDecoderConfig(config: HfDecoderConfig, label = 'config.json'): DecoderArchitecture {
  const modelType = config.model_type ?? 'llama';
  if (!SUPPORTED_MODEL_TYPES.has(modelType)) {
    throw new UserError(`${label}: model_type ${modelType} is not supported (supported: ${[...SUPPORTED_MODEL_TYPES].join(', ')})`);
  }
  if (config.mlp_bias) throw new UserError(`${label}: mlp_bias is not supported`);
  rejectSlidingWindow(config, label);
  const rope = resolveRope(config, label);
  const hiddenSize = positiveInteger(config, 'hidden_size', label);
  const numHeads = positiveInteger(config, 'num_attention_heads', label);
  const numKvHeads = config.num_key_value_heads === undefined ? numHeads : positiveInteger(config, 'num_key_value_heads', label);
  if (numHeads % numKvHeads !== 0) throw new UserError(`${label}: ${numHeads} attention heads are not a multiple of ${numKvHeads} KV heads`);
  const headDim = config.head_dim == null ? hiddenSize / numHeads : positiveInteger(config, 'head_dim', label);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new UserError(`${label}: head dimension ${headDim} must be an even integer`);
  const isQwen2 = modelType === 'qwen2';
  return {
    hiddenSize,
    intermediateSize: positiveInteger(config, 'intermediate_size', label),
    numLayers: positiveInteger(config, 'num_hidden_layers', label),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(config.rms_norm_eps, 'rms_norm_eps', label),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    vocabSize: positiveInteger(config, 'vocab_size', label),
    tieWordEmbeddings: config.tie_word_embeddings ?? false,
    qkvBias: config.attention_bias ?? isQwen2,
    outputBias: !isQwen2 && (config.attention_bias ?? false),
    ...(config.max_position_embeddings !== undefined && { maxPositionEmbeddings: positiveInteger(config, 'max_position_embeddings', label) }),
  };
}
