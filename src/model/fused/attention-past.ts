/**
 * A fused-operator decoder graph whose opset-23 `Attention` nodes extend the caches themselves: each layer's
 * `Attention(q, Concat(past_key, k), Concat(past_value, v), mask)` becomes
 * `Attention(q, k, v, mask, past_key, past_value) → (y, present_key, present_value)`, with the pasts and presents
 * head-major ([1,kvH,L,D], the operator's layout for them). The attention reads the same keys and values in the same
 * order, so its result is the same; the two Concat nodes of every layer go (the operator writes its present
 * itself). A fused loop carries the presents (loop-ops.ts decoderCaches, `headMajor`): two nodes fewer per layer
 * and forward, which count on CUDA, where a loop's time is mostly the host's work of launching nodes
 * (docs/fused-loop.md).
 */
import { TARGET_IO } from '../llama-graph.js';
import { ONNX_DATA_TYPE, type DType } from '../onnx/dtypes.js';
import { producersOf } from '../onnx/graph-queries.js';
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto.js';
import { cacheCarryOf, carriedDecoder } from './loop-ops.js';
import type { LoopKvLayout } from './vanilla-loop.js';

/** The present outputs of a rewritten graph, by layer. */
export const ATTENTION_PAST_IO = {
  presentKey: (layer: number) => `present_key_${layer}`,
  presentValue: (layer: number) => `present_value_${layer}`,
} as const;

/**
 * `model` with every layer's attention extending its caches (above), or undefined where a layer does not have the
 * fused pattern (a graph exported with --ops standard): the caller then keeps the graph's own Concats.
 */
export function attentionReadingPasts(model: ModelProto, kv: { numLayers: number; numKvHeads: number; headDim: number; dtype: DType }): ModelProto | undefined {
  const { graph } = model;
  const producers = producersOf(graph.node);
  /** The Concat that appends new rows to `past` (directly or through the contract's Reshape to rows), as a loop would carry it. */
  const concatOf = (past: string): NodeProto | undefined => {
    const { concat } = cacheCarryOf(model, past);
    return concat === undefined ? undefined : producers.get(concat);
  };
  const dropped = new Set<NodeProto>();
  const replaced = new Map<NodeProto, NodeProto>();
  for (let layer = 0; layer < kv.numLayers; layer++) {
    const [pastKey, pastValue] = [TARGET_IO.pastKey(layer), TARGET_IO.pastValue(layer)];
    const [keyConcat, valueConcat] = [concatOf(pastKey), concatOf(pastValue)];
    if (!keyConcat || !valueConcat) return undefined;
    const readers = (value: string) => graph.node.filter((node) => node.input.includes(value));
    const [keyReaders, valueReaders] = [readers(keyConcat.output[0]!), readers(valueConcat.output[0]!)];
    const attention = keyReaders[0];
    // The concatenations must feed this one Attention as its key and value, and nothing else.
    if (keyReaders.length !== 1 || valueReaders.length !== 1 || valueReaders[0] !== attention || attention.op_type !== 'Attention') return undefined;
    if (attention.input[1] !== keyConcat.output[0] || attention.input[2] !== valueConcat.output[0] || attention.input.length > 4 || attention.output.length !== 1) return undefined;
    replaced.set(attention, {
      ...attention,
      input: [attention.input[0]!, keyConcat.input[1]!, valueConcat.input[1]!, attention.input[3] ?? '', pastKey, pastValue],
      output: [attention.output[0]!, ATTENTION_PAST_IO.presentKey(layer), ATTENTION_PAST_IO.presentValue(layer)],
    });
    for (const concat of [keyConcat, valueConcat]) {
      dropped.add(concat);
      const reshape = producers.get(concat.input[0]!);
      if (reshape?.op_type === 'Reshape' && readers(reshape.output[0]!).length === 1) dropped.add(reshape);
    }
  }
  const pasts = new Set(Array.from({ length: kv.numLayers }, (_, layer) => [TARGET_IO.pastKey(layer), TARGET_IO.pastValue(layer)]).flat());
  const headMajor = (input: ValueInfoProto): ValueInfoProto =>
    pasts.has(input.name)
      ? { name: input.name, type: { tensor_type: { elem_type: ONNX_DATA_TYPE[kv.dtype], shape: { dim: [{ dim_value: 1 }, { dim_value: kv.numKvHeads }, { dim_param: 'past_sequence' }, { dim_value: kv.headDim }] } } } }
      : input;
  const node = graph.node.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
  const gone = new Set([...dropped].flatMap((n) => n.output));
  const valueInfo = graph.value_info?.filter((info) => !gone.has(info.name));
  // The dropped Reshapes' shapes, unless another node reads them.
  const read = new Set(node.flatMap((n) => n.input));
  const initializer = graph.initializer.filter((init) => read.has(init.name ?? '') || !([...dropped].some((n) => n.input.includes(init.name ?? ''))));
  return { ...model, graph: { ...graph, node, initializer, input: graph.input.map(headMajor), ...(valueInfo && { value_info: valueInfo }) } };
}

/**
 * carriedDecoder, or, where the decoder's Attention nodes can extend their caches themselves (above), that rewritten
 * graph with its presents, which a Loop carries head-major (loop-ops.ts decoderCaches' `headMajor`).
 */
export function decoderExtendingCaches(graph: ModelProto, kv: LoopKvLayout): ReturnType<typeof carriedDecoder> & { presents?: { key: (layer: number) => string; value: (layer: number) => string } } {
  const rewritten = attentionReadingPasts(graph, kv);
  if (rewritten === undefined) return carriedDecoder(graph, kv.numLayers);
  return { graph: rewritten, carries: new Map(), presents: { key: ATTENTION_PAST_IO.presentKey, value: ATTENTION_PAST_IO.presentValue } };
}
