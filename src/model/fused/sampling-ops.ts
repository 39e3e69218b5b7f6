/**
 * The host's sampling arithmetic (src/engine/sampling.ts) as graph ops, for the fused loops:
 * the target's distribution from logits (temperature, then optional nucleus / top-p truncation) and
 * the inverse-CDF draw with a given uniform.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import { vocabBlockWidth } from './vocab-blocks.js';

/** The sampling inputs both fused loops declare (their shapes differ: see each loop's IO). */
export const SAMPLING_IO = {
  /** Sampling graphs only: [] float32. */
  temperature: 'temperature',
  /** Sampling graphs only: float32 in [0, 1), one per draw the loop may make. */
  uniforms: 'uniforms',
  /** Nucleus sampling graphs only: [] float32. */
  topP: 'top_p',
} as const;

/**
 * softmax(logits / temperature) over the last axis of `logits` [N,V] (float32); with `topP`, nucleus-
 * truncated by `nucleus`, as `distributionFromLogits` does. With `vocab` (V), the softmax is taken in two levels
 * (softmaxOverVocab).
 */
export function samplingProbabilities(b: GraphBuilder, logits: string, temperature: string, topP?: string, vocab?: number): string {
  const p = softmaxOverVocab(b, b.op('Div', [logits, temperature]), vocab);
  return topP === undefined ? p : nucleus(b, p, topP);
}

/**
 * Softmax over the last axis of `x` [N,V] (float32). onnxruntime's CUDA Softmax and ReduceMax reduce a 128k-long
 * axis slowly (18 ms for 64 rows; docs/fused-loop.md), so where V has a block width W (vocabBlockWidth) the row's
 * maximum and sum are taken within blocks of W, then over the blocks. The result differs from Softmax's only in
 * the order of the sum's additions (the sampling loops' draws are compared in distribution).
 */
export function softmaxOverVocab(b: GraphBuilder, x: string, vocab?: number): string {
  const width = vocab === undefined ? undefined : vocabBlockWidth(vocab);
  if (width === undefined) return b.op('Softmax', [x], { axis: -1 });
  const axis = (a: number) => b.constant('int64', [a]);
  const blocks = b.op('Reshape', [x, b.constant('int64', [0, -1, width])]); // [N, V/W, W]
  const max = b.op('ReduceMax', [b.op('ReduceMax', [blocks, axis(2)], { keepdims: 1 }), axis(1)], { keepdims: 1 });
  const e = b.op('Exp', [b.op('Sub', [blocks, max])]);
  const sum = b.op('ReduceSum', [b.op('ReduceSum', [e, axis(2)], { keepdims: 1 }), axis(1)], { keepdims: 1 });
  return b.op('Reshape', [b.op('Div', [e, sum]), b.constant('int64', [0, -1])]);
}

/**
 * Nucleus (top-p) truncation of distributions `p` [N,V]: only the most likely ids (ties toward the
 * lower id) up to the first whose cumulative mass reaches top-p are kept, renormalized. Sorts each row
 * of the vocabulary, so callers apply it to the rows they use.
 */
export function nucleus(b: GraphBuilder, p: string, topP: string): string {
  const vocab = b.op('Shape', [p], { start: -1 });
  // TopK returns equal values lower index first: the host's order (probability descending, id ascending).
  const [sorted, order] = b.node('TopK', [p, vocab], { outputs: 2, attributes: { axis: -1, largest: 1, sorted: 1 } });
  const massBefore = b.op('Sub', [blockedCumSum(b, sorted, 2), sorted]);
  const keptSorted = b.op('Cast', [b.op('Less', [massBefore, topP])], { to: ONNX_DATA_TYPE.float32 });
  const kept = b.op('ScatterElements', [b.op('Mul', [p, b.scalar('float32', 0)]), order, keptSorted], { axis: -1 });
  const truncated = b.op('Mul', [p, kept]);
  return b.op('Div', [truncated, b.op('ReduceSum', [truncated, b.constant('int64', [-1])], { keepdims: 1 })]);
}

/**
 * One draw from the (unnormalized) distribution `p` [V] with the uniform `u` []: the first id whose
 * cumulative mass exceeds u × total, or the last id with mass when rounding leaves u × total past the end
 * (`sampleFrom`). Returns a 0-D int64. With `vocabSize` (V), that last id is found within blocks first.
 */
export function drawFrom(b: GraphBuilder, p: string, u: string, vocabSize?: number): string {
  const axis0 = b.constant('int64', [0]);
  const cdf = blockedCumSum(b, p, 1);
  const threshold = b.op('Mul', [u, b.op('ReduceSum', [p, axis0], { keepdims: 0 })]);
  const below = b.op('ReduceSum', [b.op('Cast', [b.op('LessOrEqual', [cdf, threshold])], { to: ONNX_DATA_TYPE.int64 }), axis0], { keepdims: 0 });
  const vocab = b.op('Squeeze', [b.op('Shape', [p]), axis0]);
  const ids = b.op('Cast', [b.op('Range', [b.scalar('int64', 0), vocab, b.scalar('int64', 1)])], { to: ONNX_DATA_TYPE.float32 });
  const massIds = b.op('Where', [b.op('Greater', [p, b.scalar('float32', 0)]), ids, b.scalar('float32', -1)]);
  // The largest such id, within blocks first where V has a block width (a ReduceMax over all of V is slow on CUDA).
  const width = vocabSize === undefined ? undefined : vocabBlockWidth(vocabSize);
  const lastWithMass =
    width === undefined
      ? b.op('ReduceMax', [massIds, axis0], { keepdims: 0 })
      : b.op('ReduceMax', [b.op('ReduceMax', [b.op('Reshape', [massIds, b.constant('int64', [-1, width])]), b.constant('int64', [1])], { keepdims: 0 }), axis0], { keepdims: 0 });
  return b.op('Min', [below, b.op('Cast', [lastWithMass], { to: ONNX_DATA_TYPE.int64 })]);
}

/** Elements per block of blockedCumSum: near the cube root of a 128k vocabulary, which balances its two scans. */
export const CUMSUM_BLOCK = 64;

/**
 * Inclusive prefix sums over the last axis of `x` (rank `rank`, float32), as CumSum computes them,
 * in two levels: onnxruntime's CUDA CumSum sums the whole prefix for every output element, O(V²) per
 * row, which took ≈ 3 ms per draw over a 128k vocabulary on an H200. Here the axis is padded to blocks
 * of CUMSUM_BLOCK, scanned within each block, and each block is offset by the exclusive scan of the
 * blocks' last partial sums: O(V·B + (V/B)²). Each block's offset is accumulated from exactly the value
 * its predecessor ends with, so the result never decreases across a block boundary (the draws count the
 * entries at or below a threshold, which needs a non-decreasing CDF).
 */
export function blockedCumSum(b: GraphBuilder, x: string, rank: number): string {
  const block = CUMSUM_BLOCK;
  const length = b.op('Shape', [x], { start: -1 });
  const padding = b.op('Mod', [b.op('Sub', [b.constant('int64', [block]), b.op('Mod', [length, b.constant('int64', [block])])]), b.constant('int64', [block])]);
  const pads = b.op('Concat', [b.constant('int64', new Array(2 * rank - 1).fill(0)), padding], { axis: 0 });
  const padded = b.op('Pad', [x, pads]);
  const leading = new Array(rank - 1).fill(0);
  const blocks = b.op('Reshape', [padded, b.constant('int64', [...leading, -1, block])]);
  const within = b.op('CumSum', [blocks, b.scalar('int64', -1)]);
  const blockSums = b.op('Slice', [within, b.constant('int64', [block - 1]), b.constant('int64', [block]), b.constant('int64', [-1])]);
  const offsets = b.op('CumSum', [blockSums, b.scalar('int64', -2)], { exclusive: 1 });
  const scanned = b.op('Reshape', [b.op('Add', [within, offsets]), b.constant('int64', [...leading, -1])]);
  return b.op('Slice', [scanned, b.constant('int64', [0]), length, b.constant('int64', [-1])]);
}
