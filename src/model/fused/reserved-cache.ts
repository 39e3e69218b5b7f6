/**
 * Reserved cache rows for the vanilla loop: each cache is padded once, before the Loop, to the rows the run
 * can reach (L0 + max_steps), and a step writes its new row in place instead of appending it. Every step
 * then runs the target graph on the same shapes. On CUDA the first attention of every vanilla step took 2.7 ms
 * at Llama-3-8B shape (the other layers' ≈ 0.03 ms each) while the cache length changed from step to step; with
 * the rows reserved that cost went away (docs/fused-loop.md).
 *
 * The rewrite turns each cache's `Concat(past, new)` on the row axis (the value the loop carries, see
 * CacheCarry) into `Where(write_row, new, past)`: `write_row` is true at row L only, where L is the
 * step's position, so the result is the past with its row L replaced by the new one, in the past's shape.
 * Rows above L are zeros and masked out of attention by the step's bias, so the attention reads the same
 * values as the appended cache, followed by masked rows.
 */
import { MASKED } from '../../engine/attention-bias.js';
import type { GraphBuilder } from '../onnx/builder.js';
import { intAttributeOf, producersOf } from '../onnx/graph-queries.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto.js';
import type { CacheCarry } from './loop-ops.js';

/** The rewritten graph's extra inputs: bool [1,R,1] (rank-3 caches) or [1,R,1,1] (rank 4), true at the step's row. */
export const RESERVED_IO = {
  writeRow: (rank: 3 | 4) => `cache_write_row_r${rank}`,
} as const;

/** Dimension name of the reserved rows R. */
export const DIM_RESERVED = 'reserved_rows';

/**
 * Rewrites a decoder graph so that each cache in `carries` (by past input; every one must have a
 * concatenation) is written in place: the carried value is then the past with row L replaced. Throws,
 * naming the cache, when a carry has no concatenation or the node producing it is not a two-input Concat.
 */
export function writeRowsInPlace(target: ModelProto, carries: ReadonlyMap<string, CacheCarry>): ModelProto {
  const producers = producersOf(target.graph.node);
  const replaced = new Map<NodeProto, NodeProto>();
  const ranks = new Set<3 | 4>();
  for (const [past, carry] of carries) {
    if (carry.concat === undefined || carry.newRows === undefined) throw new Error(`target graph: ${past} is not concatenated with its new rows, so its rows cannot be reserved`);
    const concat = producers.get(carry.concat);
    if (concat?.op_type !== 'Concat' || concat.input.length !== 2 || concat.input[1] !== carry.newRows || intAttributeOf(concat, 'axis') !== 1) {
      throw new Error(`target graph: ${carry.concat} (the carried ${past}) is not a two-input Concat on axis 1`);
    }
    ranks.add(carry.rank);
    replaced.set(concat, { name: `${concat.name}/in_place`, op_type: 'Where', domain: '', input: [RESERVED_IO.writeRow(carry.rank), carry.newRows, concat.input[0]!], output: [carry.concat], attribute: [] });
  }
  const boolInput = (rank: 3 | 4): ValueInfoProto => ({
    name: RESERVED_IO.writeRow(rank),
    type: { tensor_type: { elem_type: ONNX_DATA_TYPE.bool, shape: { dim: [{ dim_value: 1 }, { dim_param: DIM_RESERVED }, ...new Array(rank - 2).fill({ dim_value: 1 })] } } },
  });
  const graph = {
    ...target.graph,
    node: target.graph.node.map((node) => replaced.get(node) ?? node),
    input: [...target.graph.input, ...[...ranks].sort().map(boolInput)],
  };
  return { ...target, graph };
}

/** The reserved rows' ids (int64 [R]) shaped for a step's bias columns and, for a carried rank, its write mask. */
export function reservedRowIdShapes(b: GraphBuilder, rowIds: string, writeRank: 3 | 4 | undefined): { columns: string; rows?: string } {
  const shaped = (dims: number[]) => b.op('Reshape', [rowIds, b.constant('int64', dims)]);
  return { columns: shaped([1, 1, 1, -1]), rows: writeRank === undefined ? undefined : shaped(writeRank === 3 ? [1, -1, 1] : [1, -1, 1, 1]) };
}

/**
 * A one-token step at row `position` ([1] int64) over reserved rows: the additive bias [1,1,1,R] that shows rows
 * 0 … position, and (with `ids.rows`) the write mask, true at row `position` only.
 */
export function reservedStepMasks(b: GraphBuilder, ids: { columns: string; rows?: string }, position: string): { bias: string; writeRow?: string } {
  const shown = b.op('Less', [ids.columns, b.op('Add', [position, b.constant('int64', [1])])]);
  return {
    bias: b.op('Where', [shown, b.scalar('float32', 0), b.scalar('float32', MASKED)]),
    writeRow: ids.rows === undefined ? undefined : b.op('Equal', [ids.rows, position]),
  };
}
