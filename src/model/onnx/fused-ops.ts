/**
 * The decoder's building blocks as single fused operators, for graphs exported with `--ops fused`:
 * onnxruntime runs a graph one node at a time, with a fixed cost per node (kernel launch and
 * bookkeeping) that dominates a decode step of a small model on a GPU (docs/fused-loop.md). These
 * ops compute what the standard blocks compute (basic-ops.ts, rope.ts, attention.ts) in far fewer
 * nodes: a decoder layer goes from ≈ 57 nodes to ≈ 22.
 *
 * - RMSNorm: `SimplifiedLayerNormalization` (onnxruntime's, registered in the ai.onnx domain) and
 *   `com.microsoft.SkipSimplifiedLayerNormalization` (residual add + RMSNorm in one node). Both
 *   compute the statistics in fp32.
 * - RoPE: ai.onnx `RotaryEmbedding` (opset 23) on [batch, S, heads·headDim], with cos/sin computed
 *   once per graph from the position ids.
 * - Attention: ai.onnx `Attention` (opset 23) with grouped KV heads and the contract's additive mask;
 *   scores are scaled by 1/√headDim and normalized by softmax as in attention.ts.
 *
 * Every op has CPU and CUDA kernels in onnxruntime 1.29 (checked by the tests on the CPU and by
 * `--strict` sessions on the GPU host).
 */
import { float } from './attributes.js';
import { castTo } from './basic-ops.js';
import { MICROSOFT_DOMAIN, type GraphBuilder } from './builder.js';
import type { FloatDType } from './dtypes.js';
import { ropeAngles } from './rope.js';

/** The ai.onnx opset that defines Attention and RotaryEmbedding. */
export const FUSED_OPS_OPSET = 23;

/** RMSNorm over the last axis in one node. */
export function fusedRmsNorm(b: GraphBuilder, x: string, weight: string, eps: number): string {
  return b.op('SimplifiedLayerNormalization', [x, weight], { axis: -1, epsilon: float(eps), stash_type: 1 }, { outputDtypes: [b.dtypeOf(x)] });
}

/** `sum = x + residual` and RMSNorm(sum) in one node. */
export function fusedSkipRmsNorm(b: GraphBuilder, x: string, residual: string, weight: string, eps: number): { normalized: string; sum: string } {
  const dtype = b.dtypeOf(x);
  const [normalized, , , sum] = b.node('SkipSimplifiedLayerNormalization', [x, residual, weight], {
    domain: MICROSOFT_DOMAIN,
    outputs: [b.freshValueName('skip_rms_norm/normalized'), '', '', b.freshValueName('skip_rms_norm/sum')],
    attributes: { epsilon: float(eps) },
    outputDtypes: [dtype, undefined, undefined, dtype],
  });
  return { normalized, sum };
}

export interface RotaryTables {
  /** [batch, S, headDim/2] in the model's float type. */
  cos: string;
  sin: string;
}

/** cos/sin of `position * inv_freq` [batch, S, headDim/2], computed in fp32 and cast to `dtype`. */
export function rotaryTables(b: GraphBuilder, positionIds: string, invFreq: string, dtype: FloatDType): RotaryTables {
  return b.scope('rotary', () => {
    const angles = ropeAngles(b, positionIds, invFreq);
    return { cos: castTo(b, b.op('Cos', [angles]), dtype), sin: castTo(b, b.op('Sin', [angles]), dtype) };
  });
}

/** Rotate-half RoPE of x [batch, S, heads·headDim] in one node. */
export function fusedRope(b: GraphBuilder, x: string, tables: RotaryTables, heads: number): string {
  return b.op('RotaryEmbedding', [x, tables.cos, tables.sin], { num_heads: heads, interleaved: 0 }, { outputDtypes: [b.dtypeOf(x)] });
}

export interface FusedAttentionInputs {
  /** [batch, S, numHeads·headDim], RoPE applied. */
  query: string;
  /** [batch, P+S, numKvHeads·headDim]: past and new keys (RoPE applied) and values. */
  keys: string;
  values: string;
  /** [batch|1, 1, S, P+S] additive, in the model's float type. */
  mask: string;
}

/** softmax(q·kᵀ/√d + mask)·v with grouped KV heads in one node → [batch, S, numHeads·headDim]. */
export function fusedAttention(b: GraphBuilder, inputs: FusedAttentionInputs, shape: { numHeads: number; numKvHeads: number }): string {
  return b.op('Attention', [inputs.query, inputs.keys, inputs.values, inputs.mask], { q_num_heads: shape.numHeads, kv_num_heads: shape.numKvHeads }, { outputDtypes: [b.dtypeOf(inputs.query)] });
}
