/**
 * Tiny random Hugging Face checkpoints (a Llama target, a Qwen2 target, an EAGLE head, a plain
 * draft model) written to a temporary folder, and `fr-spec export` run on them through the CLI.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { registerExport } from '../../../src/cli/export.js';
import { bfloat16BitsToFloat32, float32ToBfloat16Bits, roundToFloat16 } from '../../../src/model/half-precision.js';
import { resolveEagleConfig, type EagleArchitecture, type HfEagleConfig } from '../../../src/model/eagle-config.js';
import { resolveDecoderConfig, type DecoderArchitecture, type HfDecoderConfig } from '../../../src/model/llama-config.js';
import { randomEagleWeights } from './reference-eagle.js';
import { randomLlamaWeights, type MapWeights } from './reference-llama.js';
import { writeHfCheckpoint, type WriteCheckpointOptions } from './hf-checkpoints.js';

export const LLAMA_TARGET_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  vocab_size: 97,
  bos_token_id: 1,
  eos_token_id: 2,
} satisfies HfDecoderConfig & Record<string, unknown>;

/** transformers 5.x style: rope settings in rope_parameters; tied embeddings, q/k/v biases. */
export const QWEN2_TARGET_CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_parameters: { rope_type: 'default', rope_theta: 1000000 },
  tie_word_embeddings: true,
  use_sliding_window: false,
  layer_types: ['full_attention', 'full_attention'],
  vocab_size: 97,
} satisfies HfDecoderConfig & Record<string, unknown>;

export const EAGLE_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 97,
} satisfies HfEagleConfig & Record<string, unknown>;

export const DRAFT_CONFIG = {
  model_type: 'llama',
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 97,
} satisfies HfDecoderConfig;

export const TOKENIZER_FIXTURES = {
  'tokenizer.json': '{"model": {"type": "BPE"}}',
  'tokenizer_config.json': '{"bos_token": "<s>"}',
  'generation_config.json': '{"bos_token_id": 1, "eos_token_id": [2, 7]}',
};

export interface TinyDecoder {
  dir: string;
  arch: DecoderArchitecture;
  /** The weights as stored (rounded to the checkpoint's dtype). */
  weights: MapWeights;
}

export interface TinyEagle {
  dir: string;
  eagle: EagleArchitecture;
  weights: MapWeights;
}

export function writeTinyDecoder(dir: string, config: HfDecoderConfig, seed: number, options: WriteCheckpointOptions = {}): TinyDecoder {
  const arch = resolveDecoderConfig(config);
  const weights = randomLlamaWeights(arch, seed);
  writeHfCheckpoint(dir, config, weights, options);
  return { dir, arch, weights: weights.mapData(storedValues(options.dtype ?? 'F32')) };
}

export function writeTinyEagle(dir: string, config: HfEagleConfig, target: DecoderArchitecture, seed: number, options: WriteCheckpointOptions = {}): TinyEagle {
  const eagle = resolveEagleConfig(config, target);
  const weights = randomEagleWeights(eagle, seed);
  writeHfCheckpoint(dir, config, weights, options);
  return { dir, eagle, weights };
}

function storedValues(dtype: 'F32' | 'F16' | 'BF16'): (data: Float32Array) => Float32Array {
  if (dtype === 'F16') return roundToFloat16;
  if (dtype === 'BF16') return (data) => bfloat16BitsToFloat32(float32ToBfloat16Bits(data));
  return (data) => data;
}

/** Runs `fr-spec export` through its commander registration (the CLI's own code path). */
export async function runExportCli(args: string[]): Promise<void> {
  const program = new Command();
  program.exitOverride().configureOutput({ writeErr: () => {} });
  registerExport(program);
  await program.parseAsync(['export', ...args, '--quiet'], { from: 'user' });
}

export interface TinyModelSet {
  target: TinyDecoder;
  eagle: TinyEagle;
  draft: TinyDecoder;
}

/** A Llama target (with tokenizer files), an EAGLE head and a draft model under `root`. */
export function writeTinyModelSet(root: string): TinyModelSet {
  const target = writeTinyDecoder(join(root, 'llama-target'), LLAMA_TARGET_CONFIG, 11, { shards: 3, extraFiles: TOKENIZER_FIXTURES });
  const eagle = writeTinyEagle(join(root, 'eagle-head'), EAGLE_CONFIG, target.arch, 12, { fileName: 'eagle.safetensors' });
  const draft = writeTinyDecoder(join(root, 'draft'), DRAFT_CONFIG, 13, { dtype: 'BF16' });
  return { target, eagle, draft };
}

/**
 * The demo model set in miniature: a target with tied embeddings, an EAGLE head without fc bias,
 * and a one-layer tied draft model that shares the target's embedding table (a copy of its values).
 */
export function writeTinySharedModelSet(root: string): TinyModelSet {
  const targetConfig = { ...LLAMA_TARGET_CONFIG, tie_word_embeddings: true, max_position_embeddings: 64 };
  const target = writeTinyDecoder(join(root, 'shared-target'), targetConfig, 41, { extraFiles: TOKENIZER_FIXTURES });
  const eagle = writeTinyEagle(join(root, 'shared-eagle'), { ...EAGLE_CONFIG, bias: false }, target.arch, 42);
  const draftConfig = { ...targetConfig, num_hidden_layers: 1 };
  const draftArch = resolveDecoderConfig(draftConfig);
  const draftWeights = randomLlamaWeights(draftArch, 43);
  draftWeights.tensors.set('model.embed_tokens.weight', target.weights.readFloat32('model.embed_tokens.weight'));
  const draftDir = writeHfCheckpoint(join(root, 'shared-draft'), draftConfig, draftWeights);
  return { target, eagle, draft: { dir: draftDir, arch: draftArch, weights: draftWeights } };
}
