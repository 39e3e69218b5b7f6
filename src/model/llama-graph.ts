/**
 * The target-model graph of the ONNX contract for Llama / Qwen2-style decoders.
 *
 * Inputs:  input_ids [1,S] int64, position_ids [1,S] int64, attention_bias [1,1,S,P+S] float32,
 *          past_key_i / past_value_i [1,P,kvH,D] (model float type), for every layer i.
 * Outputs: hidden [1,S,d] (after the final norm), new_key_i / new_value_i [1,S,kvH,D] (keys RoPE'd),
 *          argmax [1,S] int64; optionally logits [1,S,V] float32 and topk_ids [1,S,k] int64 /
 *          topk_logprobs [1,S,k] float32 (log-softmax over the full vocabulary).
 */
import type { DecoderArchitecture } from './llama-config.js';
import { GraphBuilder, type Shape } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import {
  argMaxLastAxis,
  castTo,
  embedding,
  lmHead,
  logSoftmaxLastAxis,
  rmsNorm,
  ropeInverseFrequencies,
  ropeTables,
  selfAttention,
  swiGluMlp,
  topKLastAxis,
  type RopeTables,
  type SelfAttentionWeights,
} from './onnx/ops.js';
import { WeightLoader, type Float32WeightSource } from './weight-loader.js';

export const TARGET_IO = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  attentionBias: 'attention_bias',
  pastKey: (layer: number) => `past_key_${layer}`,
  pastValue: (layer: number) => `past_value_${layer}`,
  hidden: 'hidden',
  newKey: (layer: number) => `new_key_${layer}`,
  newValue: (layer: number) => `new_value_${layer}`,
  argmax: 'argmax',
  logits: 'logits',
  topkIds: 'topk_ids',
  topkLogprobs: 'topk_logprobs',
} as const;

export const DIM_SEQUENCE = 'sequence_length';
export const DIM_PAST = 'past_sequence_length';
export const DIM_TOTAL = 'total_sequence_length';

export interface TargetGraphOptions {
  dtype: FloatDType;
  /** Also output the full logits (large: only for prefill checks and debugging). */
  logits?: boolean;
  /** Also output the top-k ids and log-probabilities per position. */
  topK?: number;
  name?: string;
}

export interface DecoderLayerWeights {
  /** Absent in EAGLE draft layers, whose input is already normalized. */
  inputNorm?: string;
  attention: SelfAttentionWeights;
  postAttentionNorm: string;
  mlp: { gate: string; up: string; down: string };
}

export interface DecoderLayerContext {
  rope: RopeTables;
  pastKey: string;
  pastValue: string;
  attentionBias: string;
}

/** One pre-norm decoder layer: `x + attn(norm(x))`, then `+ mlp(norm(·))`. */
export function decoderLayer(
  b: GraphBuilder,
  x: string,
  weights: DecoderLayerWeights,
  arch: DecoderArchitecture,
  context: DecoderLayerContext,
): { output: string; newKey: string; newValue: string } {
  const attentionInput = weights.inputNorm ? rmsNorm(b, x, weights.inputNorm, arch.rmsNormEps) : x;
  const attention = selfAttention(b, attentionInput, weights.attention, arch, context);
  const afterAttention = b.op('Add', [x, attention.output]);
  const mlpOutput = swiGluMlp(b, rmsNorm(b, afterAttention, weights.postAttentionNorm, arch.rmsNormEps), weights.mlp);
  return { output: b.op('Add', [afterAttention, mlpOutput]), newKey: attention.newKey, newValue: attention.newValue };
}

/** Loads layer `i`'s weights under their Hugging Face names. */
export function loadDecoderLayerWeights(weights: WeightLoader, arch: DecoderArchitecture, prefix: string, withInputNorm = true): DecoderLayerWeights {
  const d = arch.hiddenSize;
  const qWidth = arch.numHeads * arch.headDim;
  const kvWidth = arch.numKvHeads * arch.headDim;
  const bias = (name: string, width: number) => weights.tensor(`${prefix}.self_attn.${name}.bias`, [width]);
  return {
    inputNorm: withInputNorm ? weights.tensor(`${prefix}.input_layernorm.weight`, [d]) : undefined,
    attention: {
      q: weights.linearWeight(`${prefix}.self_attn.q_proj.weight`, d, qWidth),
      k: weights.linearWeight(`${prefix}.self_attn.k_proj.weight`, d, kvWidth),
      v: weights.linearWeight(`${prefix}.self_attn.v_proj.weight`, d, kvWidth),
      o: weights.linearWeight(`${prefix}.self_attn.o_proj.weight`, qWidth, d),
      qBias: arch.qkvBias ? bias('q_proj', qWidth) : undefined,
      kBias: arch.qkvBias ? bias('k_proj', kvWidth) : undefined,
      vBias: arch.qkvBias ? bias('v_proj', kvWidth) : undefined,
      oBias: arch.outputBias ? bias('o_proj', d) : undefined,
    },
    postAttentionNorm: weights.tensor(`${prefix}.post_attention_layernorm.weight`, [d]),
    mlp: {
      gate: weights.linearWeight(`${prefix}.mlp.gate_proj.weight`, d, arch.intermediateSize),
      up: weights.linearWeight(`${prefix}.mlp.up_proj.weight`, d, arch.intermediateSize),
      down: weights.linearWeight(`${prefix}.mlp.down_proj.weight`, arch.intermediateSize, d),
    },
  };
}

/** The graph's LM head [d, V]: `lm_head.weight`, or the embedding table when they are tied. */
function loadLmHead(weights: WeightLoader, arch: DecoderArchitecture): string {
  const source = arch.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return weights.linearWeight(source, arch.hiddenSize, arch.vocabSize, 'lm_head.weight');
}

export function buildLlamaTargetGraph(arch: DecoderArchitecture, source: Float32WeightSource, options: TargetGraphOptions): GraphBuilder {
  const { dtype } = options;
  const b = new GraphBuilder(options.name ?? 'fr-spec-target');
  const weights = new WeightLoader(b, source, dtype);
  const kvShape: Shape = [1, DIM_PAST, arch.numKvHeads, arch.headDim];
  const newKvShape: Shape = [1, DIM_SEQUENCE, arch.numKvHeads, arch.headDim];

  const inputIds = b.input(TARGET_IO.inputIds, 'int64', [1, DIM_SEQUENCE]);
  const positionIds = b.input(TARGET_IO.positionIds, 'int64', [1, DIM_SEQUENCE]);
  const attentionBias = b.input(TARGET_IO.attentionBias, 'float32', [1, 1, DIM_SEQUENCE, DIM_TOTAL]);
  const pastKeys: string[] = [];
  const pastValues: string[] = [];
  for (let i = 0; i < arch.numLayers; i++) {
    pastKeys.push(b.input(TARGET_IO.pastKey(i), dtype, kvShape));
    pastValues.push(b.input(TARGET_IO.pastValue(i), dtype, kvShape));
  }

  const embedTable = weights.tensor('model.embed_tokens.weight', [arch.vocabSize, arch.hiddenSize]);
  const invFreq = b.initializer('rope.inv_freq', 'float32', [arch.headDim / 2], ropeInverseFrequencies(arch.headDim, arch.ropeTheta, arch.ropeScaling));
  const rope = ropeTables(b, positionIds, invFreq, dtype);

  let x = embedding(b, embedTable, inputIds);
  for (let i = 0; i < arch.numLayers; i++) {
    const layerWeights = loadDecoderLayerWeights(weights, arch, `model.layers.${i}`);
    const layer = b.scope(`layers.${i}`, () =>
      decoderLayer(b, x, layerWeights, arch, { rope, pastKey: pastKeys[i], pastValue: pastValues[i], attentionBias }),
    );
    x = layer.output;
    b.output(layer.newKey, dtype, newKvShape, TARGET_IO.newKey(i));
    b.output(layer.newValue, dtype, newKvShape, TARGET_IO.newValue(i));
  }

  const finalNorm = weights.tensor('model.norm.weight', [arch.hiddenSize]);
  const hidden = b.scope('final', () => rmsNorm(b, x, finalNorm, arch.rmsNormEps));
  b.output(hidden, dtype, [1, DIM_SEQUENCE, arch.hiddenSize], TARGET_IO.hidden);

  const logits = lmHead(b, hidden, loadLmHead(weights, arch));
  b.output(argMaxLastAxis(b, logits), 'int64', [1, DIM_SEQUENCE], TARGET_IO.argmax);
  if (options.logits) {
    b.output(castTo(b, logits, 'float32'), 'float32', [1, DIM_SEQUENCE, arch.vocabSize], TARGET_IO.logits);
  }
  if (options.topK !== undefined) {
    const top = b.scope('topk', () => topKLastAxis(b, logSoftmaxLastAxis(b, logits), options.topK!));
    b.output(top.indices, 'int64', [1, DIM_SEQUENCE, options.topK], TARGET_IO.topkIds);
    b.output(top.values, 'float32', [1, DIM_SEQUENCE, options.topK], TARGET_IO.topkLogprobs);
  }

  b.setMetadata('fr-spec.graph', 'target');
  b.setMetadata('fr-spec.num_layers', String(arch.numLayers));
  b.setMetadata('fr-spec.num_kv_heads', String(arch.numKvHeads));
  b.setMetadata('fr-spec.head_dim', String(arch.headDim));
  b.setMetadata('fr-spec.dtype', dtype);
  return b;
}
