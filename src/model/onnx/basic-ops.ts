/**
 * Building blocks shared by the model graphs. Each takes the builder and value names and returns the
 * names of the values it produced. Weights of linear layers are stored [in, out] for MatMul.
 */
import type { GraphBuilder } from './builder.js';
import { ONNX_DATA_TYPE, type DType } from './dtypes.js';

/** Casts unless the value already has the type. */
export function castTo(b: GraphBuilder, x: string, dtype: DType): string {
  return b.dtypeOf(x) === dtype ? x : b.op('Cast', [x], { to: ONNX_DATA_TYPE[dtype] });
}

/** `x @ weight (+ bias)` with weight [in, out]. */
export function linear(b: GraphBuilder, x: string, weight: string, bias?: string): string {
  const product = b.op('MatMul', [x, weight]);
  return bias ? b.op('Add', [product, bias]) : product;
}

/**
 * RMSNorm over the last axis, `weight * x / sqrt(mean(x²) + eps)`. The statistics are computed in
 * fp32 whatever the input type (as HF Llama does), then cast back before the weight multiply.
 */
export function rmsNorm(b: GraphBuilder, x: string, weight: string, eps: number): string {
  return b.scope('rms_norm', () => {
    const inputType = b.dtypeOf(x);
    const x32 = castTo(b, x, 'float32');
    const meanSquare = b.op('ReduceMean', [b.op('Mul', [x32, x32]), b.constant('int64', [-1])], { keepdims: 1 });
    const variance = b.op('Add', [meanSquare, b.scalar('float32', eps)]);
    const normalized = b.op('Div', [x32, b.op('Sqrt', [variance])]);
    return b.op('Mul', [castTo(b, normalized, inputType), weight]);
  });
}

/** SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`. */
export function swiGluMlp(b: GraphBuilder, x: string, weights: { gate: string; up: string; down: string }): string {
  return b.scope('mlp', () => {
    const gate = linear(b, x, weights.gate);
    const silu = b.op('Mul', [gate, b.op('Sigmoid', [gate])]);
    return linear(b, b.op('Mul', [silu, linear(b, x, weights.up)]), weights.down);
  });
}

/** Rows of an embedding table [V, d] for int64 ids of any shape → [...ids, d]. */
export function embedding(b: GraphBuilder, table: string, ids: string): string {
  return b.op('Gather', [table, ids], { axis: 0 });
}

/** Index of the largest value over the last axis (the first one on ties), int64, axis dropped. */
export function argMaxLastAxis(b: GraphBuilder, x: string): string {
  return b.op('ArgMax', [x], { axis: -1, keepdims: 0, select_last_index: 0 });
}

/** The k largest values over the last axis, sorted descending, with their int64 indices. */
export function topKLastAxis(b: GraphBuilder, x: string, k: number): { values: string; indices: string } {
  const [values, indices] = b.node('TopK', [x, b.constant('int64', [k])], {
    outputs: 2,
    attributes: { axis: -1, largest: 1, sorted: 1 },
  });
  return { values, indices };
}

/** Log-softmax over the last axis, computed in fp32. */
export function logSoftmaxLastAxis(b: GraphBuilder, x: string): string {
  return b.op('LogSoftmax', [castTo(b, x, 'float32')], { axis: -1 });
}

/**
 * FR-Spec subset head weight: the columns of a full head [d, V] for the subset's vocabulary ids
 * (int64 [r]) → [d, r]. With both inputs as initializers, onnxruntime folds this at load time.
 */
export function subsetHeadWeight(b: GraphBuilder, fullHeadWeight: string, subsetIds: string): string {
  return b.op('Gather', [fullHeadWeight, subsetIds], { axis: 1 });
}

/** Maps indices into the subset (any shape) back to full-vocabulary ids. */
export function mapSubsetIds(b: GraphBuilder, subsetIds: string, subsetIndices: string): string {
  return b.op('Gather', [subsetIds, subsetIndices], { axis: 0 });
}

/**
 * Top-k over a subset LM head: logits for the subset's ids only, log-softmax over the subset,
 * then top-k, with ids returned in the full vocabulary.
 */
export function subsetLmHeadTopK(
  b: GraphBuilder,
  hidden: string,
  fullHeadWeight: string,
  subsetIds: string,
  k: number,
): { ids: string; logprobs: string } {
  return b.scope('subset_lm_head', () => {
    const logits = linear(b, hidden, subsetHeadWeight(b, fullHeadWeight, subsetIds));
    const top = topKLastAxis(b, logSoftmaxLastAxis(b, logits), k);
    return { ids: mapSubsetIds(b, subsetIds, top.indices), logprobs: top.values };
  });
}
