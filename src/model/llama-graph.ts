/**
 * The target-model graph of the ONNX contract for Llama / Qwen2-style decoders (also the plain
 * draft model's), and the decoder pieces the EAGLE head graph shares with it.
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
  FUSED_OPS_OPSET,
  fusedAttention,
  fusedRmsNorm,
  fusedRope,
  fusedSkipRmsNorm,
  linear,
  logSoftmaxLastAxis,
  rmsNorm,
  rotaryTables,
  ropeInverseFrequencies,
  ropeTables,
  selfAttention,
  swiGluMlp,
  topKLastAxis,
  type RopeTables,
  type RotaryTables,
  type SelfAttentionWeights,
} from './onnx/ops.js';
import { CONTRACT_VERSION } from './model-folder.js';
import { sequenceLogits, type VocabTable } from './vocab-table.js';
import { WeightLoader, type Float32WeightSource, type WeightStorage } from './weight-loader.js';

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

/**
 * Which operators the decoder graphs are built from: 'standard' ai.onnx opset-21 ops that every
 * runtime has, or 'fused' single-node RMSNorm, RoPE and attention (onnx/fused-ops.ts: opset 23 and
 * onnxruntime's contrib ops), ≈ 2.5× fewer nodes per layer. Same inputs, outputs and weights.
 */
export type GraphOps = 'standard' | 'fused';
export const GRAPH_OPS: readonly GraphOps[] = ['standard', 'fused'];

/** A builder for a decoder graph of the given ops (fused ops need opset 23). */
export function decoderGraphBuilder(name: string, ops: GraphOps = 'standard'): GraphBuilder {
  return new GraphBuilder(name, ops === 'fused' ? { opsetVersion: FUSED_OPS_OPSET } : {});
}

export interface TargetGraphOptions {
  dtype: FloatDType;
  /** Default 'standard'. */
  ops?: GraphOps;
  /** How the weights are stored; default: in `dtype`, vocabulary tables as floats. */
  storage?: WeightStorage;
  /** Also output the full logits (large: only for prefill checks and debugging). */
  logits?: boolean;
  /** Also output the top-k ids and log-probabilities per position. */
  topK?: number;
  /** Recorded in the graph's metadata; 'draft' for a plain draft model. Default 'target'. */
  role?: 'target' | 'draft';
  name?: string;
}

export interface DecoderLayerWeights {
  /** Absent in EAGLE draft layers, whose input is already normalized. */
  inputNorm?: string;
  attention: SelfAttentionWeights;
  postAttentionNorm: string;
  mlp: { gate: string; up: string; down: string };
}

/** What every layer of a graph shares: its past K/V, and the position and mask tables computed once. */
export type DecoderLayerContext = { pastKey: string; pastValue: string } & (
  | { ops: 'standard'; rope: RopeTables; attentionBias: string }
  /** `mask`: the attention bias in the model's float type. */
  | { ops: 'fused'; rotary: RotaryTables; mask: string }
);

interface DecoderLayerResult {
  output: string;
  newKey: string;
  newValue: string;
}

/** One pre-norm decoder layer: `x + attn(norm(x))`, then `+ mlp(norm(·))`. */
export function decoderLayer(
  b: GraphBuilder,
  x: string,
  weights: DecoderLayerWeights,
  arch: DecoderArchitecture,
  context: DecoderLayerContext,
): DecoderLayerResult {
  if (context.ops === 'fused') return fusedDecoderLayer(b, x, weights, arch, context);
  const attentionInput = weights.inputNorm ? rmsNorm(b, x, weights.inputNorm, arch.rmsNormEps) : x;
  const attention = selfAttention(b, attentionInput, weights.attention, arch, context);
  const afterAttention = b.op('Add', [x, attention.output]);
  const mlpOutput = swiGluMlp(b, rmsNorm(b, afterAttention, weights.postAttentionNorm, arch.rmsNormEps), weights.mlp);
  return { output: b.op('Add', [afterAttention, mlpOutput]), newKey: attention.newKey, newValue: attention.newValue };
}

/** The same layer from fused ops; the residual add after attention is part of the second norm. */
function fusedDecoderLayer(
  b: GraphBuilder,
  x: string,
  weights: DecoderLayerWeights,
  arch: DecoderArchitecture,
  context: Extract<DecoderLayerContext, { ops: 'fused' }>,
): DecoderLayerResult {
  const eps = arch.rmsNormEps;
  const attentionInput = weights.inputNorm ? fusedRmsNorm(b, x, weights.inputNorm, eps) : x;
  const { output: attended, newKey, newValue } = b.scope('self_attn', () => {
    const { numHeads, numKvHeads, headDim } = arch;
    const w = weights.attention;
    const kvWidth = numKvHeads * headDim;
    const reshape = (value: string, dims: number[]) => b.op('Reshape', [value, b.constant('int64', dims)]);
    const query = fusedRope(b, linear(b, attentionInput, w.q, w.qBias), context.rotary, numHeads);
    const key = fusedRope(b, linear(b, attentionInput, w.k, w.kBias), context.rotary, numKvHeads);
    const value = linear(b, attentionInput, w.v, w.vBias);
    const allKeys = b.op('Concat', [reshape(context.pastKey, [0, 0, kvWidth]), key], { axis: 1 });
    const allValues = b.op('Concat', [reshape(context.pastValue, [0, 0, kvWidth]), value], { axis: 1 });
    const context3d = fusedAttention(b, { query, keys: allKeys, values: allValues, mask: context.mask }, arch);
    return {
      output: linear(b, context3d, w.o, w.oBias),
      newKey: reshape(key, [0, 0, numKvHeads, headDim]),
      newValue: reshape(value, [0, 0, numKvHeads, headDim]),
    };
  });
  const { normalized, sum } = fusedSkipRmsNorm(b, attended, x, weights.postAttentionNorm, eps);
  return { output: b.op('Add', [sum, swiGluMlp(b, normalized, weights.mlp)]), newKey, newValue };
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

export const EMBEDDING_WEIGHT = 'model.embed_tokens.weight';

/** The model's embedding table [V, d]. */
export function embeddingTable(weights: WeightLoader, arch: { vocabSize: number; hiddenSize: number }): VocabTable {
  return weights.vocabTable(EMBEDDING_WEIGHT, arch.vocabSize, arch.hiddenSize);
}

/** The model's LM head [V, d] in HF's layout: `lm_head.weight`, or the embedding table itself when tied. */
export function lmHeadTable(weights: WeightLoader, arch: DecoderArchitecture): VocabTable {
  return arch.tieWordEmbeddings ? embeddingTable(weights, arch) : weights.vocabTable('lm_head.weight', arch.vocabSize, arch.hiddenSize);
}

/** The inputs every decoder graph of the contract shares (the EAGLE head adds `feature`). */
export interface DecoderInputs {
  inputIds: string;
  positionIds: string;
  attentionBias: string;
  pastKeys: string[];
  pastValues: string[];
}

export function declareDecoderInputs(b: GraphBuilder, numLayers: number, kv: { numKvHeads: number; headDim: number }, dtype: FloatDType): DecoderInputs {
  const kvShape: Shape = [1, DIM_PAST, kv.numKvHeads, kv.headDim];
  const inputIds = b.input(TARGET_IO.inputIds, 'int64', [1, DIM_SEQUENCE]);
  const positionIds = b.input(TARGET_IO.positionIds, 'int64', [1, DIM_SEQUENCE]);
  const attentionBias = b.input(TARGET_IO.attentionBias, 'float32', [1, 1, DIM_SEQUENCE, DIM_TOTAL]);
  const pastKeys: string[] = [];
  const pastValues: string[] = [];
  for (let i = 0; i < numLayers; i++) {
    pastKeys.push(b.input(TARGET_IO.pastKey(i), dtype, kvShape));
    pastValues.push(b.input(TARGET_IO.pastValue(i), dtype, kvShape));
  }
  return { inputIds, positionIds, attentionBias, pastKeys, pastValues };
}

/**
 * Runs `x` through decoder layers, declaring each layer's new K/V rows as the outputs
 * new_key_i / new_value_i, and returns the last layer's output.
 */
export function decoderStack(
  b: GraphBuilder,
  x: string,
  layers: readonly DecoderLayerWeights[],
  arch: DecoderArchitecture,
  inputs: DecoderInputs,
  dtype: FloatDType,
  ops: GraphOps = 'standard',
): string {
  const invFreq = b.initializer('rope.inv_freq', 'float32', [arch.headDim / 2], ropeInverseFrequencies(arch.headDim, arch.ropeTheta, arch.ropeScaling));
  const shared =
    ops === 'fused'
      ? { ops, rotary: rotaryTables(b, inputs.positionIds, invFreq, dtype), mask: castTo(b, inputs.attentionBias, dtype) }
      : { ops, rope: ropeTables(b, inputs.positionIds, invFreq, dtype), attentionBias: inputs.attentionBias };
  const newKvShape: Shape = [1, DIM_SEQUENCE, arch.numKvHeads, arch.headDim];
  layers.forEach((weights, i) => {
    const context: DecoderLayerContext = { ...shared, pastKey: inputs.pastKeys[i], pastValue: inputs.pastValues[i] };
    const layer = b.scope(`layers.${i}`, () => decoderLayer(b, x, weights, arch, context));
    x = layer.output;
    b.output(layer.newKey, dtype, newKvShape, TARGET_IO.newKey(i));
    b.output(layer.newValue, dtype, newKvShape, TARGET_IO.newValue(i));
  });
  return x;
}

/**
 * Metadata every graph of the contract carries: which graph it is and how its KV cache is shaped;
 * `ops` for decoder graphs only (the LM heads are the same in both operator sets).
 */
export function setGraphMetadata(b: GraphBuilder, graph: string, dtype: FloatDType, kv?: { numLayers: number; numKvHeads: number; headDim: number }, ops?: GraphOps): void {
  b.setMetadata('fr-spec.graph', graph);
  b.setMetadata('fr-spec.contract_version', String(CONTRACT_VERSION));
  b.setMetadata('fr-spec.dtype', dtype);
  if (ops !== undefined) b.setMetadata('fr-spec.ops', ops);
  if (kv) {
    b.setMetadata('fr-spec.num_layers', String(kv.numLayers));
    b.setMetadata('fr-spec.num_kv_heads', String(kv.numKvHeads));
    b.setMetadata('fr-spec.head_dim', String(kv.headDim));
  }
}

/** The target graph; a plain draft model (SPS, Ouroboros) is built the same way with `role: 'draft'`. */
export function buildLlamaTargetGraph(arch: DecoderArchitecture, source: Float32WeightSource, options: TargetGraphOptions): GraphBuilder {
  const { dtype } = options;
  const role = options.role ?? 'target';
  const ops = options.ops ?? 'standard';
  const b = decoderGraphBuilder(options.name ?? `fr-spec-${role}`, ops);
  const weights = new WeightLoader(b, source, dtype, options.storage);
  const inputs = declareDecoderInputs(b, arch.numLayers, arch, dtype);

  const layers = Array.from({ length: arch.numLayers }, (_, i) => loadDecoderLayerWeights(weights, arch, `model.layers.${i}`));
  const x = decoderStack(b, embeddingTable(weights, arch).lookup(inputs.inputIds), layers, arch, inputs, dtype, ops);

  const finalNorm = weights.tensor('model.norm.weight', [arch.hiddenSize]);
  const hidden = b.scope('final', () => (ops === 'fused' ? fusedRmsNorm : rmsNorm)(b, x, finalNorm, arch.rmsNormEps));
  b.output(hidden, dtype, [1, DIM_SEQUENCE, arch.hiddenSize], TARGET_IO.hidden);

  const logits = sequenceLogits(b, hidden, lmHeadTable(weights, arch));
  b.output(argMaxLastAxis(b, logits), 'int64', [1, DIM_SEQUENCE], TARGET_IO.argmax);
  if (options.logits) {
    b.output(castTo(b, logits, 'float32'), 'float32', [1, DIM_SEQUENCE, arch.vocabSize], TARGET_IO.logits);
  }
  if (options.topK !== undefined) {
    const top = b.scope('topk', () => topKLastAxis(b, logSoftmaxLastAxis(b, logits), options.topK!));
    b.output(top.indices, 'int64', [1, DIM_SEQUENCE, options.topK], TARGET_IO.topkIds);
    b.output(top.values, 'float32', [1, DIM_SEQUENCE, options.topK], TARGET_IO.topkLogprobs);
  }

  setGraphMetadata(b, role, dtype, arch, ops);
  return b;
}
