/**
 * RoPE from tables computed once per run instead of once per forward. A fused-operator decoder graph
 * computes, in every forward, cos/sin of `position · inv_freq` for its S positions (fused-ops.ts
 * rotaryTables: Cast, Unsqueeze, Mul, Cos, Sin and, on fp16, two Casts) and feeds them to each
 * RotaryEmbedding as 3-D caches. Inside a fused loop that is 5–7 nodes per inlined forward, each one
 * host-side launch cost per iteration (eight forwards per eagle cycle). `rotaryFromTables` rewires
 * every RotaryEmbedding to read two tables [maxPositions, D/2] (graph inputs, which the loop computes
 * once in its outer graph with rotaryCaches from the same `inv_freq` and the same operators) at the
 * forward's position ids (RotaryEmbedding's optional fourth input); the per-forward table nodes are
 * then unused and the Loop body prunes them. The tables hold, row for row, the values the forward
 * computed, so the rotated q and k are the same bits.
 */
import { ONNX_DATA_TYPE, type FloatDType } from '../onnx/dtypes.js';
import { intAttributeOf, producersOf } from '../onnx/graph-queries.js';
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { ROPE_INV_FREQ } from './gqa-decode.js';

/** The inputs the rewritten graph adds: cos and sin for positions 0 … maxPositions − 1, [maxPositions, D/2]. */
export const ROTARY_TABLE_IO = { cos: 'rotary_cos_table', sin: 'rotary_sin_table' } as const;

/**
 * Rewrites `graph`'s RotaryEmbedding nodes to read ROTARY_TABLE_IO at their position ids. A graph with
 * no RotaryEmbedding (a standard-operator export) is returned unchanged, and so is `rewritten: false`.
 * Throws, naming the node, when a RotaryEmbedding's tables are not the exported per-forward pattern
 * (cos/sin of Cast(position ids) · rope.inv_freq), so that the tables could compute something else.
 */
export function rotaryFromTables(graph: ModelProto, dtype: FloatDType): { graph: ModelProto; rewritten: boolean } {
  const nodes = graph.graph.node;
  const producers = producersOf(nodes);
  const inputs = new Set(graph.graph.input.map((input) => input.name));
  const fail = (node: NodeProto, what: string): never => {
    throw new Error(`${graph.graph.name} graph: ${node.name}'s ${what} is not the exported per-forward RoPE table (cos/sin of Cast(position ids) · ${ROPE_INV_FREQ})`);
  };
  const producer = (value: string, opType: string): NodeProto | undefined => {
    const node = producers.get(value);
    return node?.op_type === opType ? node : undefined;
  };
  /** The position-id graph input a table input of `rope` is computed from. */
  const positionsOf = (rope: NodeProto, table: string, trig: 'Cos' | 'Sin'): string => {
    const cast = dtype === 'float32' ? undefined : (producer(table, 'Cast') ?? fail(rope, `${trig} table`));
    if (cast && intAttributeOf(cast, 'to') !== ONNX_DATA_TYPE[dtype]) fail(rope, `${trig} table`);
    const cosOrSin = producer(cast ? cast.input[0] : table, trig) ?? fail(rope, `${trig} table`);
    const angles = producer(cosOrSin.input[0], 'Mul') ?? fail(rope, `${trig} table`);
    if (angles.input[1] !== ROPE_INV_FREQ) fail(rope, `${trig} table`);
    const unsqueeze = producer(angles.input[0], 'Unsqueeze') ?? fail(rope, `${trig} table`);
    const toFloat = producer(unsqueeze.input[0], 'Cast') ?? fail(rope, `${trig} table`);
    if (intAttributeOf(toFloat, 'to') !== ONNX_DATA_TYPE.float32 || !inputs.has(toFloat.input[0])) fail(rope, `${trig} table`);
    return toFloat.input[0];
  };

  let rewritten = false;
  const node = nodes.map((n) => {
    if (n.op_type !== 'RotaryEmbedding' || (n.domain ?? '') !== '') return n;
    if (n.input.length !== 3) throw new Error(`${graph.graph.name} graph: ${n.name} already has ${n.input.length} inputs; expected RotaryEmbedding(x, cos, sin)`);
    const positions = positionsOf(n, n.input[1], 'Cos');
    if (positionsOf(n, n.input[2], 'Sin') !== positions) fail(n, 'Sin table');
    rewritten = true;
    return { ...n, input: [n.input[0], ROTARY_TABLE_IO.cos, ROTARY_TABLE_IO.sin, positions] };
  });
  if (!rewritten) return { graph, rewritten };
  const table = (name: string) => ({ name, type: { tensor_type: { elem_type: ONNX_DATA_TYPE[dtype], shape: { dim: [{ dim_param: 'max_positions' }, { dim_param: 'rotary_half' }] } } } });
  return {
    graph: { ...graph, graph: { ...graph.graph, node, input: [...graph.graph.input, table(ROTARY_TABLE_IO.cos), table(ROTARY_TABLE_IO.sin)] } },
    rewritten,
  };
}
