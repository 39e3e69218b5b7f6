/** Graph pieces both fused loops use (vanilla-loop.ts, eagle-loop.ts). */
import { TARGET_IO } from '../llama-graph.js';
import type { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import type { ModelProto } from '../onnx/proto.js';

/** The value of a decoded target graph that its ArgMax reads: the logits [1,S,V]. */
export function logitsBeforeArgmax(target: ModelProto): string {
  const producerOf = (value: string) => target.graph.node.find((node) => node.output.includes(value));
  let producer = producerOf(TARGET_IO.argmax);
  while (producer?.op_type === 'Identity') producer = producerOf(producer.input[0]);
  if (producer?.op_type !== 'ArgMax') throw new Error('target graph has no ArgMax producing its argmax output');
  return producer.input[0];
}

/**
 * [] bool: no id of `tokens` ([N] int64) is one of `stopIds` ([K] int64, K may be 0). A −2 appended to
 * the stop ids never equals a token (nor the −1 padding of a committed block) and keeps the reduced
 * axis non-empty: CUDA's ReduceSum refuses an empty axis without keepdims.
 */
export function noStopIdAmong(b: GraphBuilder, tokens: string, stopIds: string): string {
  const stops = b.op('Concat', [stopIds, b.constant('int64', [-2])], { axis: 0 });
  const matches = b.op('Equal', [b.op('Unsqueeze', [tokens, b.constant('int64', [1])]), b.op('Unsqueeze', [stops, b.constant('int64', [0])])]);
  const hits = b.op('ReduceSum', [b.op('Cast', [matches], { to: ONNX_DATA_TYPE.int64 })], { keepdims: 0 });
  return b.op('Equal', [hits, b.scalar('int64', 0)]);
}
