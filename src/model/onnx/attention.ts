/**
 * Causal self-attention with grouped KV heads, from plain ONNX ops (runs on every execution
 * provider). Layouts follow the model contract: past and new keys/values are BSNH
 * [batch, tokens, kvHeads, headDim]; the additive mask is fp32 [batch|1, 1, S, P+S].
 */
import { castTo, linear } from './basic-ops.js';
import type { GraphBuilder } from './builder.js';
import { applyRope, type RopeTables } from './rope.js';

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

export interface AttentionCoreInputs {
  /** [batch, S, numHeads, headDim], RoPE applied. */
  query: string;
  /** [batch, S, numKvHeads, headDim], RoPE applied. */
  key: string;
  /** [batch, S, numKvHeads, headDim]. */
  value: string;
  /** [batch, P, numKvHeads, headDim] (P may be 0). */
  pastKey: string;
  pastValue: string;
  /** fp32 [batch|1, 1, S, P+S], 0 where attending and a large negative value elsewhere. */
  attentionBias: string;
}

/**
 * softmax(q·kᵀ/√d + bias)·v over past and new keys → [batch, S, numHeads·headDim].
 *
 * Grouped KV heads are shared without materializing the repeat: the n_rep query heads of each KV
 * group are folded into the row axis ([b, kvH, n_rep·S, d]), so one MatMul per group serves them
 * all. Query head h uses KV head ⌊h / n_rep⌋, as HF's repeat_kv does. Scores are masked and
 * normalized in fp32 (HF upcasts the softmax too).
 */
export function groupedQueryAttention(b: GraphBuilder, inputs: AttentionCoreInputs, shape: AttentionShape): string {
  const { numHeads, numKvHeads, headDim } = shape;
  if (numHeads % numKvHeads !== 0) throw new Error(`${numHeads} heads cannot share ${numKvHeads} KV heads`);
  return b.scope('attention', () => {
    const dtype = b.dtypeOf(inputs.query);
    const ints = (values: number[]) => b.constant('int64', values);
    const reshape = (x: string, dims: number[]) => b.op('Reshape', [x, ints(dims)]);
    // Reshape dims: 0 copies the input's size on that axis, -1 is inferred.
    const groupedQuery = reshape(b.op('Transpose', [inputs.query], { perm: [0, 2, 1, 3] }), [0, numKvHeads, -1, headDim]);
    const allKeys = b.op('Concat', [inputs.pastKey, inputs.key], { axis: 1 });
    const allValues = b.op('Concat', [inputs.pastValue, inputs.value], { axis: 1 });
    const keysTransposed = b.op('Transpose', [allKeys], { perm: [0, 2, 3, 1] });
    const values = b.op('Transpose', [allValues], { perm: [0, 2, 1, 3] });

    const groupedScores = b.op('MatMul', [groupedQuery, keysTransposed]);
    const scores = castTo(b, reshape(groupedScores, [0, numHeads, -1, 0]), 'float32');
    const scaled = b.op('Mul', [scores, b.scalar('float32', 1 / Math.sqrt(headDim))]);
    const probabilities = b.op('Softmax', [b.op('Add', [scaled, inputs.attentionBias])], { axis: -1 });
    const groupedProbabilities = reshape(castTo(b, probabilities, dtype), [0, numKvHeads, -1, 0]);

    const groupedContext = b.op('MatMul', [groupedProbabilities, values]);
    const context = reshape(groupedContext, [0, numHeads, -1, headDim]);
    const tokenMajor = b.op('Transpose', [context], { perm: [0, 2, 1, 3] });
    return reshape(tokenMajor, [0, 0, numHeads * headDim]);
  });
}

export interface SelfAttentionWeights {
  q: string;
  k: string;
  v: string;
  o: string;
  qBias?: string;
  kBias?: string;
  vBias?: string;
  oBias?: string;
}

export interface SelfAttentionResult {
  /** [batch, S, hidden]. */
  output: string;
  /** The new tokens' keys (RoPE applied) and values, [batch, S, numKvHeads, headDim]. */
  newKey: string;
  newValue: string;
}

/** Projections, RoPE, attention over past + new tokens, and the output projection. */
export function selfAttention(
  b: GraphBuilder,
  x: string,
  weights: SelfAttentionWeights,
  shape: AttentionShape,
  context: { rope: RopeTables; pastKey: string; pastValue: string; attentionBias: string },
): SelfAttentionResult {
  return b.scope('self_attn', () => {
    const { numHeads, numKvHeads, headDim } = shape;
    const heads = (projection: string, count: number) => b.op('Reshape', [projection, b.constant('int64', [0, 0, count, headDim])]);
    const query = applyRope(b, heads(linear(b, x, weights.q, weights.qBias), numHeads), context.rope);
    const newKey = applyRope(b, heads(linear(b, x, weights.k, weights.kBias), numKvHeads), context.rope);
    const newValue = heads(linear(b, x, weights.v, weights.vBias), numKvHeads);
    const attended = groupedQueryAttention(
      b,
      { query, key: newKey, value: newValue, pastKey: context.pastKey, pastValue: context.pastValue, attentionBias: context.attentionBias },
      shape,
    );
    return { output: linear(b, attended, weights.o, weights.oBias), newKey, newValue };
  });
}
