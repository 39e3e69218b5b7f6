/** Graph pieces the fused loops share (vanilla-loop.ts, eagle-loop.ts, sps-loop.ts): the Loop's assembly, the stop test, the logits lookup, padded chains. */
import { MASKED } from '../../engine/attention-bias.js';
import { bucketSize } from '../../engine/buckets.js';
import { TARGET_IO } from '../llama-graph.js';
import type { GraphBuilder, Shape } from '../onnx/builder.js';
import type { InlinableGraph } from '../onnx/inline.js';
import { ONNX_DATA_TYPE, type DType } from '../onnx/dtypes.js';
import { intAttributeOf, producersOf } from '../onnx/graph-queries.js';
import { OnnxAttributeType, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js';
import { ROPE_INV_FREQ, rotaryCaches } from './gqa-decode.js';
import { DIM_RESERVED } from './reserved-cache.js';
import { ROTARY_TABLE_IO } from './rotary-tables.js';
import { SAMPLING_IO } from './sampling-ops.js';
import type { LoopKvLayout } from './vanilla-loop.js';

/** The value of a decoded target graph that its ArgMax reads: the logits [1,S,V]. */
export function logitsBeforeArgmax(target: ModelProto): string {
  const producerOf = (value: string) => target.graph.node.find((node) => node.output.includes(value));
  let producer = producerOf(TARGET_IO.argmax);
  while (producer?.op_type === 'Identity') producer = producerOf(producer.input[0]);
  if (producer?.op_type !== 'ArgMax') throw new Error('target graph has no ArgMax producing its argmax output');
  return producer.input[0];
}

/**
 * How a loop carries one cache of a decoded target graph: as the value in which the graph appends its
 * new K/V rows to `past` (a past_key_i / past_value_i input) — the output of a `Concat` on axis 1
 * whose first input is `past` ([1,L,kvH,D], rank 4), or `past` reshaped by a constant shape (the fused
 * operators concatenate [1,L,kvH·D] rows, rank 3). Those rows are the whole cache after the step, so a
 * loop that keeps them carries that value, in its layout, with no copy and no reshape per step; a
 * past of that rank is valid input to the graph again. Without such a node (`concat` undefined) the
 * loop concatenates itself, in the contract's layout (rank 4).
 */
export interface CacheCarry {
  concat?: string;
  /** The Concat's second input: the new rows (RoPE applied for keys) in the carried layout. */
  newRows?: string;
  rank: 3 | 4;
}

export function cacheCarryOf(target: ModelProto, past: string): CacheCarry {
  const producers = producersOf(target.graph.node);
  for (const node of target.graph.node) {
    if (node.op_type !== 'Concat' || node.input.length !== 2 || intAttributeOf(node, 'axis') !== 1) continue;
    if (node.input[0] === past) return { concat: node.output[0], newRows: node.input[1], rank: 4 };
    const reshape = producers.get(node.input[0]);
    if (reshape?.op_type !== 'Reshape' || reshape.input[0] !== past) continue;
    const rank = Number(target.graph.initializer.find((init) => init.name === reshape.input[1])?.dims[0]);
    if (rank === 3 || rank === 4) return { concat: node.output[0], newRows: node.input[1], rank };
  }
  return { rank: 4 };
}

/** The body of a fused-loop model's Loop (the graph one iteration runs). */
export function loopBodyOf(model: ModelProto): GraphProto {
  const body = model.graph.node.find((n) => n.op_type === 'Loop')?.attribute.find((a) => a.name === 'body')?.g;
  if (!body) throw new Error(`${model.graph.name}: no Loop node with a body graph`);
  return body;
}

/**
 * How a Loop carries each of a decoder graph's `numLayers` caches (cacheCarryOf, by past input name), and
 * the graph to inline for it: one whose caches carried as rows are concatenated as fed
 * (concatCarriedRowsDirectly).
 */
export function carriedDecoder(graph: ModelProto, numLayers: number): { graph: ModelProto; carries: Map<string, CacheCarry> } {
  const pasts = Array.from({ length: numLayers }, (_, i) => [TARGET_IO.pastKey(i), TARGET_IO.pastValue(i)]).flat();
  const carries = new Map(pasts.map((past) => [past, cacheCarryOf(graph, past)]));
  const rowPasts = pasts.filter((past) => carries.get(past)!.rank === 3);
  return { graph: concatCarriedRowsDirectly(graph, rowPasts), carries };
}

/**
 * `target` with the caches a Loop carries as rows ([1,L,kvH·D], `pasts`) concatenated as fed: the graph
 * reshapes each past to [0,0,kvH·D] before its Concat, which leaves rows as they are, so the Concat reads
 * the past itself and the Reshape (a node per cache per step) is pruned with the Loop body's unused nodes.
 * The carries (cacheCarryOf) are found on the graph before this rewrite.
 */
function concatCarriedRowsDirectly(target: ModelProto, pasts: readonly string[]): ModelProto {
  const rowPasts = new Set(pasts);
  const producers = producersOf(target.graph.node);
  const node = target.graph.node.map((n) => {
    if (n.op_type !== 'Concat' || n.input.length !== 2) return n;
    const reshape = producers.get(n.input[0]);
    if (reshape?.op_type !== 'Reshape' || !rowPasts.has(reshape.input[0])) return n;
    return { ...n, input: [reshape.input[0], n.input[1]] };
  });
  return { ...target, graph: { ...target.graph, node } };
}

/**
 * How a Loop carries a cache: `token-major` is the contract's [1,L,kvH,D]; `rows` is [1,L,kvH·D] (the
 * fused operators' concatenation, see CacheCarry); `head-major` is [1,kvH,L,D] (GroupQueryAttention's
 * BNSH, gqa-decode.ts, and opset-23 Attention's past and present, attention-past.ts).
 */
export type CarriedCacheLayout = 'token-major' | 'rows' | 'head-major';

export function carriedLayoutOf(carry: CacheCarry): CarriedCacheLayout {
  return carry.rank === 4 ? 'token-major' : 'rows';
}

/** The axis along which a cache carried in `layout` holds its rows. */
export function rowAxisOf(layout: CarriedCacheLayout): 1 | 2 {
  return layout === 'head-major' ? 2 : 1;
}

/**
 * Declares a cache the Loop carries in `layout` while the outer graph takes and returns it in the
 * contract's [1,L,kvH,D] as `input` and `final`: another layout is converted once before the Loop and
 * once after it. Call `finish` after addLoop.
 *
 * With `reserve` (an outer int64 [2·rank] value: the pads of a Pad in the carried layout), the Loop starts from
 * the cache padded with zero rows and carries it at that size (reserved-cache.ts); the final cache keeps them.
 */
export function carriedCache(
  outer: GraphBuilder,
  spec: { input: string; body: string; final: string; dtype: DType; kv: { numKvHeads: number; headDim: number }; layout: CarriedCacheLayout; rows: string; reserve?: string },
): { carried: CarriedValue; finish(): void } {
  const { input, body, final, dtype, kv, rows, reserve } = spec;
  const contractShape: Shape = [1, rows, kv.numKvHeads, kv.headDim];
  if (spec.layout === 'token-major' && reserve === undefined) return { carried: { outer: input, body, final, dtype, shape: contractShape }, finish: () => undefined };
  outer.input(input, dtype, contractShape);
  const loopFinal = `${final}/${spec.layout}`;
  // Names under the cache's own input and output names: a Loop body must not define a name of the outer graph.
  const reshape = (value: string, scope: string, dims: number[]) => outer.scope(scope, () => outer.op('Reshape', [value, outer.initializer(`${scope}/shape`, 'int64', [dims.length], dims)]));
  const transpose = (value: string, scope: string) => outer.scope(scope, () => outer.op('Transpose', [value], { perm: [0, 2, 1, 3] }));
  const padded = (value: string) => (reserve === undefined ? value : outer.scope(`${input}/reserve`, () => outer.op('Pad', [value, reserve])));
  const carriedRows = reserve === undefined ? rows : DIM_RESERVED;
  if (spec.layout === 'token-major') {
    return {
      carried: { initial: padded(input), body, final: loopFinal, dtype, shape: [1, carriedRows, kv.numKvHeads, kv.headDim] },
      finish: () => void outer.output(loopFinal, dtype, contractShape, final),
    };
  }
  if (spec.layout === 'head-major') {
    return {
      carried: { initial: padded(transpose(input, input)), body, final: loopFinal, dtype, shape: [1, kv.numKvHeads, carriedRows, kv.headDim] },
      finish: () => void outer.output(transpose(loopFinal, final), dtype, contractShape, final),
    };
  }
  const width = kv.numKvHeads * kv.headDim;
  return {
    carried: { initial: padded(reshape(input, input, [1, -1, width])), body, final: loopFinal, dtype, shape: [1, carriedRows, width] },
    finish: () => void outer.output(reshape(loopFinal, final, [1, -1, kv.numKvHeads, kv.headDim]), dtype, contractShape, final),
  };
}

/**
 * [] bool: no id of `tokens` ([N] int64) is one of `stopIds` ([K] int64, K may be 0). A −2 appended to
 * the stop ids never equals a token (nor the −1 padding of a committed block) and keeps the reduced
 * axis non-empty. The "any" is a TopK (K = 1) over the matches: on CUDA onnxruntime's ReduceSum and
 * ArgMax cost far more per node (docs/fused-loop.md).
 */
export function noStopIdAmong(b: GraphBuilder, tokens: string, stopIds: string): string {
  const stops = b.op('Concat', [stopIds, b.constant('int64', [-2])], { axis: 0 });
  const matches = b.op('Equal', [b.op('Unsqueeze', [tokens, b.constant('int64', [1])]), stops]); // [N, K+1]
  const [anyMatch] = b.node('TopK', [b.op('Reshape', [b.op('Cast', [matches], { to: ONNX_DATA_TYPE.float32 }), b.constant('int64', [-1])]), b.constant('int64', [1])], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
  return b.op('Reshape', [b.op('Less', [anyMatch, b.scalar('float32', 0.5)]), b.constant('int64', [])]);
}

/**
 * [] int64: the index of the first maximum of `values` ([N] or [N,1] float32), ArgMax's answer (select_last_index 0)
 * from a TopK (K = 1), which orders equal values lower index first: on CUDA onnxruntime's ArgMax costs far
 * more per node.
 */
export function firstMaxIndex(b: GraphBuilder, values: string): string {
  const [, index] = b.node('TopK', [values, b.constant('int64', [1])], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
  return b.op('Reshape', [index, b.constant('int64', [])]);
}

/** One loop-carried value: its outer input (absent: starts from `initial`), body name and final output. */
export interface CarriedValue {
  outer?: string;
  /** An outer-graph value the Loop starts from when there is no outer input. */
  initial?: string;
  body: string;
  final: string;
  dtype: DType;
  shape: Shape;
}

/** A per-iteration output of the body, stacked by the Loop into `name` [iterations, ...shape]. */
export interface ScanOutput {
  value: string;
  name: string;
  dtype: DType;
  shape: Shape;
}

/** Body value names of the Loop's own two inputs. */
export const LOOP_BODY = { iteration: 'it/iteration', condIn: 'it/cond_in' } as const;

/**
 * Declares a Loop's carried values, in the one order every list of the Loop follows: the outer
 * graph's inputs (those with one) and the body's inputs (iteration, condition, then the carried values).
 */
export function declareCarried(outer: GraphBuilder, body: GraphBuilder, carried: readonly CarriedValue[]): void {
  for (const c of carried) if (c.outer) outer.input(c.outer, c.dtype, c.shape);
  body.input(LOOP_BODY.iteration, 'int64', []);
  body.input(LOOP_BODY.condIn, 'bool', []);
  for (const c of carried) body.input(c.body, c.dtype, c.shape);
}

/**
 * Closes a Loop: declares the body's outputs (the condition, each carried value's update, the scans),
 * adds the Loop node over the body to `outer`, and declares the outer outputs: the stacked scans, then
 * the final carried values that have an outer input.
 */
export function addLoop(outer: GraphBuilder, body: GraphBuilder, spec: { name: string; maxSteps: string; carried: readonly CarriedValue[]; updated: ReadonlyMap<string, string>; cond: string; scans: readonly ScanOutput[]; iterationsDim: string }): void {
  const { carried, scans } = spec;
  // A body output is the computed value itself where it can be: an Identity per output (one per cache) is
  // a node per iteration, and onnxruntime removes one only when nothing else reads its input (a cache the
  // next layer's attention reads too). A value that is a body input, an outer value or already an output
  // goes out through an Identity under `fallback`.
  const named = new Set<string>();
  const output = (value: string, dtype: DType, shape: Shape, fallback: string) => {
    const name = body.isNodeOutput(value) && !named.has(value) ? value : fallback;
    named.add(value);
    body.output(value, dtype, shape, name);
  };
  output(spec.cond, 'bool', [], 'it/cond_out');
  for (const c of carried) {
    const value = spec.updated.get(c.body);
    if (value === undefined) throw new Error(`${spec.name}: no update for the carried value ${c.body}`);
    output(value, c.dtype, c.shape, `${c.body}_out`);
  }
  for (const scan of scans) output(scan.value, scan.dtype, scan.shape, `it/${scan.name}_scan`);
  // Inlined graphs' outputs the body ignores (new_key_i where the loop keeps the graph's own concatenation,
  // the argmax in a sampling variant) would still run, one node each per iteration.
  body.pruneUnusedNodes();
  const condTrue = outer.initializer(`${spec.name}/cond_true`, 'bool', [], [true]);
  const loop: NodeProto = {
    name: spec.name,
    op_type: 'Loop',
    domain: '',
    input: [spec.maxSteps, condTrue, ...carried.map((c) => c.outer ?? c.initial!)],
    output: [...carried.map((c) => c.final), ...scans.map((s) => s.name)],
    attribute: [{ name: 'body', type: OnnxAttributeType.GRAPH, g: body.toModel().graph }],
  };
  outer.adoptNodes([loop], Object.fromEntries([...carried.map((c) => [c.final, c.dtype]), ...scans.map((s) => [s.name, s.dtype])]));
  for (const scan of scans) outer.output(scan.name, scan.dtype, [spec.iterationsDim, ...scan.shape]);
  for (const c of carried) if (c.outer) outer.output(c.final, c.dtype, c.shape);
}

/**
 * The rows of a forward over the first `count` ([] int64, 1 … maxRows) tokens of a chain, fed as the host
 * engine feeds a chain (src/engine/decoder.ts): in bucketSize(count) rows, the padding rows repeating row 0,
 * which no real row sees. `source` [nb] int64: the chain row each fed row repeats (gather ids and positions
 * with it); `bias` [1,1,nb,L+nb]: every one of the `cachedRows` ([1] int64) cached rows, and the chain up to
 * the row itself.
 */
export function paddedChain(b: GraphBuilder, count: string, maxRows: number, cachedRows: string): { source: string; bias: string } {
  const buckets = b.constant('int64', Array.from({ length: maxRows + 1 }, (_, n) => bucketSize(Math.max(n, 1))));
  const rows = b.op('Range', [b.scalar('int64', 0), b.op('Gather', [buckets, count], { axis: 0 }), b.scalar('int64', 1)]); // [nb]
  const source = b.op('Where', [b.op('Less', [rows, count]), rows, b.scalar('int64', 0)]);
  const sees = b.op('LessOrEqual', [b.op('Unsqueeze', [rows, b.constant('int64', [0])]), b.op('Unsqueeze', [source, b.constant('int64', [1])])]);
  const cacheColumns = b.op('Expand', [b.constant('float32', [0], [1, 1]), b.op('Concat', [b.op('Shape', [rows]), cachedRows], { axis: 0 })]);
  const chainColumns = b.op('Where', [sees, b.scalar('float32', 0), b.scalar('float32', MASKED)]);
  return { source, bias: b.op('Unsqueeze', [b.op('Concat', [cacheColumns, chainColumns], { axis: 1 }), b.constant('int64', [0, 1])]) };
}

/**
 * The interface the speculative loops (eagle_loop, sps_loop) share: the run's bounds, the sampling inputs,
 * the committed blocks and their counts, and the target's caches in and out.
 */
export const SPECULATIVE_LOOP_IO = {
  targetKey: (i: number) => `cache_key_${i}`,
  targetValue: (i: number) => `cache_value_${i}`,
  maxSteps: 'max_steps',
  /** Stop once this many tokens are committed. */
  maxTokens: 'max_tokens',
  stopIds: 'stop_ids',
  ...SAMPLING_IO,
  /** [N, block] int64: each iteration's committed tokens, −1 after counts[i]. */
  blocks: 'blocks',
  counts: 'counts',
  finalTargetKey: (i: number) => `final_key_${i}`,
  finalTargetValue: (i: number) => `final_value_${i}`,
} as const;

/**
 * Declares the speculative loops' run inputs on the outer graph and makes them visible in the body:
 * max_steps, max_tokens, stop_ids, and for a sampling variant temperature, uniforms (`uniformsShape`)
 * and, for the nucleus variant, top_p.
 */
export function declareRunInputs(outer: GraphBuilder, body: GraphBuilder, sampling: 'plain' | 'nucleus' | undefined, uniformsShape: Shape): void {
  const io = SPECULATIVE_LOOP_IO;
  outer.input(io.maxSteps, 'int64', []);
  outer.input(io.maxTokens, 'int64', []);
  outer.input(io.stopIds, 'int64', ['num_stop_ids']);
  body.outerValue(io.maxTokens, 'int64');
  body.outerValue(io.stopIds, 'int64');
  if (!sampling) return;
  outer.input(io.temperature, 'float32', []);
  outer.input(io.uniforms, 'float32', uniformsShape);
  body.outerValue(io.temperature, 'float32');
  body.outerValue(io.uniforms, 'float32');
  if (sampling === 'nucleus') {
    outer.input(io.topP, 'float32', []);
    body.outerValue(io.topP, 'float32');
  }
}

/** Loop names of one decoder's per-layer caches: its outer input, body value and final output. */
export interface CacheNames {
  input: (layer: number) => string;
  body: (layer: number) => string;
  final: (layer: number) => string;
}

/**
 * A decoder's key and value caches as a Loop carries them (carriedCache), layer by layer, each with the
 * decoder's past input and new-rows output it stands for and how the decoder concatenates it (CacheCarry).
 *
 * Options: `headMajor`, the values in which a rewritten decoder extends each layer's key and value head-major
 * (GroupQueryAttention's presents, gqa-decode.ts), carried instead of the decoder's own concatenations;
 * `reserve`, carriedCache's reserved rows.
 */
export function decoderCaches(
  outer: GraphBuilder,
  decoder: ReturnType<typeof carriedDecoder>,
  kv: LoopKvLayout,
  rows: string,
  key: CacheNames,
  value: CacheNames,
  options: { headMajor?: { key: (layer: number) => string; value: (layer: number) => string }; reserve?: string } = {},
) {
  const { headMajor, reserve } = options;
  return Array.from({ length: kv.numLayers }, (_, i) => [
    { past: TARGET_IO.pastKey(i), newRows: TARGET_IO.newKey(i), input: key.input(i), body: key.body(i), final: key.final(i), present: headMajor?.key(i) },
    { past: TARGET_IO.pastValue(i), newRows: TARGET_IO.newValue(i), input: value.input(i), body: value.body(i), final: value.final(i), present: headMajor?.value(i) },
  ])
    .flat()
    .map(({ present, ...cache }) => {
      const carry: CacheCarry = present === undefined ? decoder.carries.get(cache.past)! : { concat: present, rank: 4 };
      const layout = present === undefined ? carriedLayoutOf(carry) : 'head-major';
      return { ...cache, carry, rowAxis: rowAxisOf(layout), ...carriedCache(outer, { ...cache, dtype: kv.dtype, kv, layout, rows, reserve }) };
    });
}

/**
 * The RoPE tables an inlined decoder reads (rotaryFromTables) when its graph was rewritten to read them:
 * computed once per run in the outer graph from the decoder's own inv_freq, `rows` positions, visible in
 * the body; the inputs to add to each call of the decoder. None when the graph was not rewritten.
 */
export function rotaryTableInputs(outer: GraphBuilder, body: GraphBuilder, graph: InlinableGraph, tabled: { rewritten: boolean }, rows: number, dtype: LoopKvLayout['dtype']): Record<string, string> {
  if (!tabled.rewritten) return {};
  const tables = rotaryCaches(outer, graph.valueName({ prefix: '', inputs: {} }, ROPE_INV_FREQ), rows, dtype);
  for (const table of [tables.cos, tables.sin]) body.outerValue(table, dtype);
  return { [ROTARY_TABLE_IO.cos]: tables.cos, [ROTARY_TABLE_IO.sin]: tables.sin };
}

/**
 * The block of tokens a speculative cycle commits, `size` long: the first `lastIndex` of `drafted` ([size]
 * int64), then `next` at `lastIndex` ([] int64: the accepted drafts' count), then −1.
 */
export function committedBlock(b: GraphBuilder, drafted: string, lastIndex: string, next: string, size: number): string {
  const positions = b.constant('int64', Array.from({ length: size }, (_, i) => i));
  return b.op('Where', [b.op('Equal', [positions, lastIndex]), next, b.op('Where', [b.op('Less', [positions, lastIndex]), drafted, b.scalar('int64', -1)])]);
}
