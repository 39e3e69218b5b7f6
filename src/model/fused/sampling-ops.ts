/**
 * The host's sampling arithmetic (src/engine/sampling.ts) as graph ops, for the fused loops:
 * the target's distribution from logits (temperature, then optional nucleus / top-p truncation) and
 * the inverse-CDF draw with a given uniform.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';

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
 * softmax(logits / temperature) over the last axis of `logits` [N,V] (float32); with `topP`, only the
 * most likely ids (ties toward the lower id) up to the first whose cumulative mass reaches top-p are
 * kept, renormalized, as `distributionFromLogits` does.
 */
export function samplingProbabilities(b: GraphBuilder, logits: string, temperature: string, topP?: string): string {
  const p = b.op('Softmax', [b.op('Div', [logits, temperature])], { axis: -1 });
  if (topP === undefined) return p;
  const vocab = b.op('Shape', [p], { start: -1 });
  // TopK returns equal values lower index first: the host's order (probability descending, id ascending).
  const [sorted, order] = b.node('TopK', [p, vocab], { outputs: 2, attributes: { axis: -1, largest: 1, sorted: 1 } });
  const massBefore = b.op('Sub', [b.op('CumSum', [sorted, b.scalar('int64', -1)]), sorted]);
  const keptSorted = b.op('Cast', [b.op('Less', [massBefore, topP])], { to: ONNX_DATA_TYPE.float32 });
  const kept = b.op('ScatterElements', [b.op('Mul', [p, b.scalar('float32', 0)]), order, keptSorted], { axis: -1 });
  const truncated = b.op('Mul', [p, kept]);
  return b.op('Div', [truncated, b.op('ReduceSum', [truncated, b.constant('int64', [-1])], { keepdims: 1 })]);
}

/**
 * One draw from the (unnormalized) distribution `p` [V] with the uniform `u` []: the first id whose
 * cumulative mass exceeds u × total, or the last id with mass when rounding leaves u × total past the end
 * (`sampleFrom`). Returns a 0-D int64.
 */
export function drawFrom(b: GraphBuilder, p: string, u: string): string {
  const axis0 = b.constant('int64', [0]);
  const cdf = b.op('CumSum', [p, b.scalar('int64', 0)]);
  const threshold = b.op('Mul', [u, b.op('ReduceSum', [p, axis0], { keepdims: 0 })]);
  const below = b.op('ReduceSum', [b.op('Cast', [b.op('LessOrEqual', [cdf, threshold])], { to: ONNX_DATA_TYPE.int64 }), axis0], { keepdims: 0 });
  const vocab = b.op('Squeeze', [b.op('Shape', [p]), axis0]);
  const ids = b.op('Cast', [b.op('Range', [b.scalar('int64', 0), vocab, b.scalar('int64', 1)])], { to: ONNX_DATA_TYPE.float32 });
  const lastWithMass = b.op('ReduceMax', [b.op('Where', [b.op('Greater', [p, b.scalar('float32', 0)]), ids, b.scalar('float32', -1)]), axis0], { keepdims: 0 });
  return b.op('Min', [below, b.op('Cast', [lastWithMass], { to: ONNX_DATA_TYPE.int64 })]);
}
