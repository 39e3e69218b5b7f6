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
 * onnxruntime's contrib ops), ≈ 3× fewer nodes per layer. Same inputs and outputs; the fused layers' q/k/v
 * weights are packed (see loadDecoderLayerWeights).
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

interface LayerNorms {
  /** Absent in EAGLE draft layers, whose input is already normalized. */
  inputNorm?: string;
  postAttentionNorm: string;
}

/** A layer's weights as the standard operators use them: one initializer per Hugging Face tensor. */
export interface StandardLayerWeights extends LayerNorms {
  ops: 'standard';
  attention: SelfAttentionWeights;
  mlp: { gate: string; up: string; down: string };
}

/**
 * The fused operators' layer weights: q/k/v packed side by side ([d, q+2kv]), so one MatMul and a Split replace
 * three MatMuls (each node costs onnxruntime host time). Gate and up stay two MatMuls: packed, they would need a
 * Split too, the same node count, and on CUDA a Split takes about twice a MatMul's host time (28.5 against 13 µs
 * at Llama-3-8B shape on an H100, docs/fused-loop.md).
 */
export interface FusedLayerWeights extends LayerNorms {
  ops: 'fused';
  attention: { qkv: string; qkvBias?: string; o: string; oBias?: string };
  mlp: { gate: string; up: string; down: string };
}

export type DecoderLayerWeights = StandardLayerWeights | FusedLayerWeights;

/** What every layer of a graph shares: its past K/V, and the position and mask tables computed once. */
export type DecoderLayerContext = { pastKey: string; pastValue: string } & (
  | { ops: 'standard'; rope: RopeTables; attentionBias: string }
  /** `mask`: the attention bias in the model's float type. */
  | { ops: 'fused'; rotary: RotaryTables; mask: string }
);

/**
 * The residual stream between layers: its running `sum`, plus (fused operators) the last layer's MLP
 * output not yet added, which the next RMSNorm adds in the same node (SkipSimplifiedLayerNormalization).
 */
export interface ResidualStream {
  sum: string;
  pending?: string;
}

/** The stream's value: `sum + pending`. */
export function residualValue(b: GraphBuilder, stream: ResidualStream): string {
  return stream.pending === undefined ? stream.sum : b.op('Add', [stream.sum, stream.pending]);
}

/** RMSNorm of the stream's value, in the operator set's form (fused: the pending addend added by the norm node). */
export function normalizedStream(b: GraphBuilder, stream: ResidualStream, weight: string, eps: number, ops: GraphOps): string {
  if (ops === 'standard') return rmsNorm(b, residualValue(b, stream), weight, eps);
  if (stream.pending === undefined) return fusedRmsNorm(b, stream.sum, weight, eps);
  return fusedSkipRmsNorm(b, stream.pending, stream.sum, weight, eps).normalized;
}

interface DecoderLayerResult {
  output: ResidualStream;
  newKey: string;
  newValue: string;
}

/** One pre-norm decoder layer: `x + attn(norm(x))`, then `+ mlp(norm(·))`. */
export function decoderLayer(
  b: GraphBuilder,
  x: ResidualStream,
  weights: DecoderLayerWeights,
  arch: DecoderArchitecture,
  context: DecoderLayerContext,
): DecoderLayerResult {
  const mismatch = () => new Error(`layer weights for ${weights.ops} operators in a ${context.ops} graph`);
  if (weights.ops === 'fused') {
    if (context.ops !== 'fused') throw mismatch();
    return fusedDecoderLayer(b, x, weights, arch, context);
  }
  if (context.ops !== 'standard') throw mismatch();
  const input = residualValue(b, x);
  const attentionInput = weights.inputNorm ? rmsNorm(b, input, weights.inputNorm, arch.rmsNormEps) : input;
  const attention = selfAttention(b, attentionInput, weights.attention, arch, context);
  const afterAttention = b.op('Add', [input, attention.output]);
  const mlpOutput = swiGluMlp(b, rmsNorm(b, afterAttention, weights.postAttentionNorm, arch.rmsNormEps), weights.mlp);
  return { output: { sum: b.op('Add', [afterAttention, mlpOutput]) }, newKey: attention.newKey, newValue: attention.newValue };
}

/**
 * The same layer from fused ops. Both residual adds are parts of norm nodes: the one after attention of
 * the post-attention norm, the one after the MLP (left pending in the stream) of the next layer's input
 * norm or the final norm.
 */
function fusedDecoderLayer(
  b: GraphBuilder,
  x: ResidualStream,
  weights: FusedLayerWeights,
  arch: DecoderArchitecture,
  context: Extract<DecoderLayerContext, { ops: 'fused' }>,
): DecoderLayerResult {
  const eps = arch.rmsNormEps;
  let residual: string;
  let attentionInput: string;
  if (weights.inputNorm && x.pending !== undefined) {
    const norm = fusedSkipRmsNorm(b, x.pending, x.sum, weights.inputNorm, eps);
    [residual, attentionInput] = [norm.sum, norm.normalized];
  } else {
    residual = residualValue(b, x);
    attentionInput = weights.inputNorm ? fusedRmsNorm(b, residual, weights.inputNorm, eps) : residual;
  }
  const { output: attended, newKey, newValue } = b.scope('self_attn', () => {
    const { numHeads, numKvHeads, headDim } = arch;
    const w = weights.attention;
    const kvWidth = numKvHeads * headDim;
    const reshape = (value: string, dims: number[]) => b.op('Reshape', [value, b.constant('int64', dims)]);
    const [q, k, value] = b.node('Split', [linear(b, attentionInput, w.qkv, w.qkvBias), b.constant('int64', [numHeads * headDim, kvWidth, kvWidth])], { outputs: 3, attributes: { axis: -1 } });
    const query = fusedRope(b, q, context.rotary, numHeads);
    const key = fusedRope(b, k, context.rotary, numKvHeads);
    const allKeys = b.op('Concat', [reshape(context.pastKey, [0, 0, kvWidth]), key], { axis: 1 });
    const allValues = b.op('Concat', [reshape(context.pastValue, [0, 0, kvWidth]), value], { axis: 1 });
    const context3d = fusedAttention(b, { query, keys: allKeys, values: allValues, mask: context.mask }, arch);
    return {
      output: linear(b, context3d, w.o, w.oBias),
      newKey: reshape(key, [0, 0, numKvHeads, headDim]),
      newValue: reshape(value, [0, 0, numKvHeads, headDim]),
    };
  });
  const { normalized, sum } = fusedSkipRmsNorm(b, attended, residual, weights.postAttentionNorm, eps);
  const mlp = b.scope('mlp', () => {
    const [gate, up] = [linear(b, normalized, weights.mlp.gate), linear(b, normalized, weights.mlp.up)];
    return linear(b, b.op('Mul', [b.op('Mul', [gate, b.op('Sigmoid', [gate])]), up]), weights.mlp.down);
  });
  return { output: { sum, pending: mlp }, newKey, newValue };
}

/**
 * Loads layer `i`'s weights under their Hugging Face names; for fused operators q/k/v are packed as
 * `…self_attn.qkv_proj.weight` (and `.bias`).
 */
export function loadDecoderLayerWeights(weights: WeightLoader, arch: DecoderArchitecture, prefix: string, withInputNorm = true, ops: GraphOps = 'standard'): DecoderLayerWeights {
  const d = arch.hiddenSize;
  const qWidth = arch.numHeads * arch.headDim;
  const kvWidth = arch.numKvHeads * arch.headDim;
  const bias = (name: string, width: number) => weights.tensor(`${prefix}.self_attn.${name}.bias`, [width]);
  // Read in the checkpoint's layer order (input norm, attention, post-attention norm, MLP): it is the
  // order of the tensors in weights.data.
  const inputNorm = withInputNorm ? weights.tensor(`${prefix}.input_layernorm.weight`, [d]) : undefined;
  const postAttentionNorm = () => weights.tensor(`${prefix}.post_attention_layernorm.weight`, [d]);
  if (ops === 'fused') {
    const projections = [
      { name: 'q_proj', width: qWidth },
      { name: 'k_proj', width: kvWidth },
      { name: 'v_proj', width: kvWidth },
    ];
    const attention = `${prefix}.self_attn`;
    return {
      ops,
      inputNorm,
      attention: {
        qkv: weights.packedLinearWeight(`${attention}.qkv_proj.weight`, d, projections.map((p) => ({ name: `${attention}.${p.name}.weight`, outFeatures: p.width }))),
        qkvBias: arch.qkvBias ? weights.packedTensor(`${attention}.qkv_proj.bias`, projections.map((p) => ({ name: `${attention}.${p.name}.bias`, length: p.width }))) : undefined,
        o: weights.linearWeight(`${attention}.o_proj.weight`, qWidth, d),
        oBias: arch.outputBias ? bias('o_proj', d) : undefined,
      },
      postAttentionNorm: postAttentionNorm(),
      mlp: {
        gate: weights.linearWeight(`${prefix}.mlp.gate_proj.weight`, d, arch.intermediateSize),
        up: weights.linearWeight(`${prefix}.mlp.up_proj.weight`, d, arch.intermediateSize),
        down: weights.linearWeight(`${prefix}.mlp.down_proj.weight`, arch.intermediateSize, d),
      },
    };
  }
  return {
    ops,
    inputNorm,
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
    postAttentionNorm: postAttentionNorm(),
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
 * Runs `input` through decoder layers, declaring each layer's new K/V rows as the outputs
 * new_key_i / new_value_i, and returns the residual stream after the last layer.
 */
export function decoderStack(
  b: GraphBuilder,
  input: string,
  layers: readonly DecoderLayerWeights[],
  arch: DecoderArchitecture,
  inputs: DecoderInputs,
  dtype: FloatDType,
  ops: GraphOps = 'standard',
): ResidualStream {
  let x: ResidualStream = { sum: input };
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

  const layers = Array.from({ length: arch.numLayers }, (_, i) => loadDecoderLayerWeights(weights, arch, `model.layers.${i}`, true, ops));
  const stream = decoderStack(b, embeddingTable(weights, arch).lookup(inputs.inputIds), layers, arch, inputs, dtype, ops);

  const finalNorm = weights.tensor('model.norm.weight', [arch.hiddenSize]);
  const hidden = b.scope('final', () => normalizedStream(b, stream, finalNorm, arch.rmsNormEps, ops));
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
