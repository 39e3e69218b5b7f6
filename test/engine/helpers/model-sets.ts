/**
 * Tiny exported model folders for engine tests. Random weights give near-zero acceptance, so the
 * drafts here are built from the target's own weights:
 * - the target's attention output is scaled by `attention` (0 < a ≤ 1), so the next token depends
 *   mostly on the current token and partly on the context (which keeps the KV cache relevant);
 * - the "mimic" EAGLE head runs the target's MLPs on the embedding of its input token with its own
 *   attention switched off, and the target's final norm is all ones (a positive rescaling that
 *   leaves the argmax alone), so its top-1 is the target's context-free guess;
 * - the draft model is the target with attention switched off (the same guess).
 * Drafts therefore agree where attention does not flip the argmax: both acceptance and rejection
 * happen often.
 */
import { join } from 'node:path';
import { resolveEagleConfig } from '../../../src/model/eagle-config.js';
import { resolveDecoderConfig, type DecoderArchitecture, type HfDecoderConfig } from '../../../src/model/llama-config.js';
import type { Float32Tensor } from '../../../src/model/safetensors.js';
import { writeHfCheckpoint } from '../../model/helpers/hf-checkpoints.js';
import { randomEagleWeights } from '../../model/helpers/reference-eagle.js';
import { MapWeights, randomLlamaWeights } from '../../model/helpers/reference-llama.js';
import { runExportCli } from '../../model/helpers/tiny-models.js';

export interface ModelSetOptions {
  vocabSize: number;
  /** Scale of the target's attention output. */
  attention: number;
  seed: number;
  /** 'mimic' (agrees often) or 'random' EAGLE head. */
  eagle?: 'mimic' | 'random';
  /** 'no-attention' target copy (agrees often) or the exact 'target' (always agrees). */
  draft?: 'no-attention' | 'target';
  dtype?: 'fp32' | 'fp16';
  /** The decoder graphs' operators (fr-spec export --ops); default standard. */
  ops?: 'standard' | 'fused';
  /** Files copied into the target checkpoint (and so into the model folder). */
  tokenizerFiles?: Record<string, string>;
  /** Scale of the LM head (larger: peakier distributions). */
  headScale?: number;
  numLayers?: number;
  /** Default 32 (intermediate size twice that, 4 heads over 2 KV heads). */
  hiddenSize?: number;
  maxPositionEmbeddings?: number;
  /** A build-vocab folder to ship in the model folder's vocab-maps/. */
  vocabMaps?: string;
}

export const GENERATION_FIXTURES = {
  'tokenizer.json': '{"model": {"type": "BPE"}}',
  'tokenizer_config.json': '{"bos_token": "<s>"}',
};

export function targetConfig(options: ModelSetOptions): HfDecoderConfig & Record<string, unknown> {
  const layers = options.numLayers ?? 2;
  const d = options.hiddenSize ?? 32;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: d,
    intermediate_size: 2 * d,
    num_hidden_layers: layers,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: options.vocabSize,
    bos_token_id: 1,
    eos_token_id: 2,
    ...(options.maxPositionEmbeddings !== undefined && { max_position_embeddings: options.maxPositionEmbeddings }),
  };
}

const scaled = (t: Float32Tensor, by: number): Float32Tensor => ({ shape: t.shape, data: t.data.map((v) => v * by) });

function targetWeights(options: ModelSetOptions): MapWeights {
  const arch = resolveDecoderConfig(targetConfig(options));
  const weights = randomLlamaWeights(arch, options.seed);
  const tensors = withAttentionScaled(weights.tensors, arch.numLayers, options.attention);
  tensors.set('model.norm.weight', { shape: [arch.hiddenSize], data: new Float32Array(arch.hiddenSize).fill(1) });
  if (options.headScale !== undefined) tensors.set('lm_head.weight', scaled(tensors.get('lm_head.weight')!, options.headScale));
  return new MapWeights(tensors);
}

/** A copy of `tensors` whose attention output projections are multiplied by `by` in the first `layers` layers. */
function withAttentionScaled(tensors: ReadonlyMap<string, Float32Tensor>, layers: number, by: number): Map<string, Float32Tensor> {
  const copy = new Map(tensors);
  for (let i = 0; i < layers; i++) {
    const name = `model.layers.${i}.self_attn.o_proj.weight`;
    copy.set(name, scaled(copy.get(name)!, by));
  }
  return copy;
}

function withoutAttention(target: MapWeights, layers: number): MapWeights {
  return new MapWeights(withAttentionScaled(target.tensors, layers, 0));
}

function eagleConfig(options: ModelSetOptions) {
  const d = options.hiddenSize ?? 32;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: d,
    intermediate_size: 2 * d,
    num_hidden_layers: options.numLayers ?? 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    vocab_size: options.vocabSize,
    bias: false,
  };
}

/** fc = [I | 0] (the token's embedding only), attention off, the target's MLPs and their norms. */
function mimicEagleWeights(options: ModelSetOptions, target: MapWeights): MapWeights {
  const config = eagleConfig(options);
  const eagle = resolveEagleConfig(config, resolveDecoderConfig(targetConfig(options)));
  const tensors = new Map(randomEagleWeights(eagle, options.seed + 1).tensors);
  const d = config.hidden_size;
  const fc = new Float32Array(d * 2 * d);
  for (let i = 0; i < d; i++) fc[i * 2 * d + i] = 1;
  tensors.set('fc.weight', { shape: [d, 2 * d], data: fc });
  for (let i = 0; i < config.num_hidden_layers; i++) {
    tensors.set(`layers.${i}.self_attn.o_proj.weight`, scaled(tensors.get(`layers.${i}.self_attn.o_proj.weight`)!, 0));
    for (const part of ['post_attention_layernorm', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) {
      tensors.set(`layers.${i}.${part}.weight`, target.readFloat32(`model.layers.${i}.${part}.weight`));
    }
  }
  return new MapWeights(tensors);
}

export interface ModelSet {
  /** The exported model folder. */
  dir: string;
  /** The target's architecture and weights, for reference forwards. */
  target: { arch: DecoderArchitecture; weights: MapWeights };
}

/** Writes the checkpoints under `root` and exports them to `root`/model. */
export async function writeModelSet(root: string, options: ModelSetOptions): Promise<ModelSet> {
  const config = targetConfig(options);
  const target = targetWeights(options);
  const layers = config.num_hidden_layers;
  writeHfCheckpoint(join(root, 'target'), config, target, { extraFiles: options.tokenizerFiles ?? GENERATION_FIXTURES });
  const eagle = options.eagle === 'random' ? randomEagleWeights(resolveEagleConfig(eagleConfig(options), resolveDecoderConfig(config)), options.seed + 2) : mimicEagleWeights(options, target);
  writeHfCheckpoint(join(root, 'eagle'), eagleConfig(options), eagle);
  writeHfCheckpoint(join(root, 'draft'), config, options.draft === 'target' ? target : withoutAttention(target, layers));
  const out = join(root, 'model');
  await runExportCli(['--target', join(root, 'target'), '--eagle', join(root, 'eagle'), '--draft', join(root, 'draft'), '--out', out, '--dtype', options.dtype ?? 'fp32', '--ops', options.ops ?? 'standard', '--force', ...(options.vocabMaps ? ['--vocab-maps', options.vocabMaps] : [])]);
  return { dir: out, target: { arch: resolveDecoderConfig(config), weights: target } };
}
