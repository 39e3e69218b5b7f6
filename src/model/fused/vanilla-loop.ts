/**
 * `vanilla_loop`: autoregressive decoding (greedy or sampled) compiled into one ONNX `Loop`, so the KV
 * cache stays on the execution provider between decode steps (docs/fused-loop.md).
 *
 * The Loop body is the folder's own target graph (target.onnx inlined as is by InlinableGraph: every
 * node, the same external-data initializers in weights.data) wrapped by a prologue and an epilogue:
 * - prologue: input_ids / position_ids from the carried token and the cache length L (the caches'
 *   row count), and the all-zero additive mask [1,1,1,L+1]; RoPE reads tables the outer graph computes
 *   once per run (rotary-tables.ts);
 * - epilogue: each cache grows by its new row (the target graph's own concatenation of past and new
 *   rows, reshaped, where it has one; a `Concat` otherwise), the argmax (or, sampling, a draw) is the next
 *   carried token and a scan output, and `cond = no stop id was produced`.
 *
 * The caches are carried at their exact length, so every step feeds the target graph the very shapes
 * the host engine feeds it (past = L rows, one new token): the same kernels, the same rounding, the
 * same tokens on fp16 too. A carried value whose shape changes between iterations is valid ONNX.
 * With `reserveRows` they are instead carried padded to the generation's R rows, each step writing its row in
 * place (reserved-cache.ts): every step then has the same shapes (the host engine's reserved decode steps,
 * reserved-decode.ts, compute the same).
 * With `attention: 'gqa'` the inlined graph is gqaDecodeTarget's (one GroupQueryAttention per layer,
 * caches carried head-major), which the host engine then runs too for its decode steps.
 *
 * Inputs:  first_token [1] int64 (the token after the cached rows, not yet in the cache),
 *          cache_key_i / cache_value_i [1,L,kvH,D] (the cache, L rows), max_steps [] int64,
 *          stop_ids [K] int64 (K may be 0).
 * Outputs: tokens [N,1] int64 (N ≤ max_steps: the tokens generated, a final stop id included),
 *          final_token [1], final_key_i / final_value_i [1,L+N,kvH,D] (to run the next chunk).
 *
 * Weights are not copied: the model keeps target.onnx's external-data references (`weights.data`,
 * relative) and is loaded from bytes with the external-data folder set to the model folder
 * (createSessionFromModel, via the engine's LoopSessions). Built in memory on every session creation
 * (milliseconds: the target graph is ~70 KB of protobuf).
 */
import { TARGET_IO } from '../llama-graph.js';
import { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE, type FloatDType } from '../onnx/dtypes.js';
import { InlinableGraph } from '../onnx/inline.js';
import type { ModelProto } from '../onnx/proto.js';
import { GQA_IO, gqaDecodeTarget, ROPE_INV_FREQ, rotaryCaches, type DecodeAttention } from './gqa-decode.js';
import { addLoop, cacheCarryOf, carriedDecoder, declareCarried, decoderCaches, LOOP_BODY, logitsBeforeArgmax, noStopIdAmong, type CarriedValue } from './loop-ops.js';
import { rotaryFromTables, ROTARY_TABLE_IO } from './rotary-tables.js';
import { DIM_RESERVED, RESERVED_IO, reservedRowIdShapes, reservedStepMasks, writeRowsInPlace } from './reserved-cache.js';
import { decoderArgmaxInTwoLevels } from './vocab-reductions.js';
import { drawFrom, SAMPLING_IO, samplingProbabilities } from './sampling-ops.js';

export const LOOP_IO = {
  firstToken: 'first_token',
  cacheKey: (layer: number) => `cache_key_${layer}`,
  cacheValue: (layer: number) => `cache_value_${layer}`,
  maxSteps: 'max_steps',
  stopIds: 'stop_ids',
  /**
   * Reserved rows only (VanillaLoopOptions.reserveRows): cache_key_i / cache_value_i then hold R rows of which the
   * first L are in use (the rest zeros); `cached_rows` int64 [1] is L, `reserve_pads` int64 [2·rank] the Pad that
   * brings the fed caches to R rows (reservePads; zero once they have them) and `reserved_row_ids` int64 [R]
   * the ids 0 … R−1. The final caches have R rows.
   */
  cachedRows: 'cached_rows',
  reservePads: 'reserve_pads',
  reservedRowIds: 'reserved_row_ids',
  /** Sampling graphs: temperature, top_p (nucleus only), uniforms [max_steps] (one draw per step). */
  ...SAMPLING_IO,
  tokens: 'tokens',
  finalToken: 'final_token',
  finalKey: (layer: number) => `final_key_${layer}`,
  finalValue: (layer: number) => `final_value_${layer}`,
} as const;

export const LOOP_GRAPH = 'vanilla_loop';
/** The caches' row count (it grows inside the Loop). */
export const DIM_CACHED = 'cached_rows';
export const DIM_STEPS = 'steps';
const DIM_STOP = 'num_stop_ids';

export interface LoopKvLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  dtype: FloatDType;
}

/** Body-local names of the carried values. */
const BODY = {
  token: 'it/token',
  key: (layer: number) => `it/key_${layer}`,
  value: (layer: number) => `it/value_${layer}`,
};

export interface VanillaLoopOptions {
  /** Each step draws from softmax(logits / temperature) ('nucleus': truncated to `top_p`) instead of taking the argmax. */
  sampling?: 'plain' | 'nucleus';
  /**
   * 'graph' (default): the target graph's own attention nodes, the host engine's kernels. 'gqa': one
   * GroupQueryAttention per layer with the cache carried head-major (gqa-decode.ts; fused-operator
   * exports only).
   */
  attention?: DecodeAttention;
  /** The longest context (positions 0 … maxPositions − 1): rows of the RoPE tables the loop computes once per run. */
  maxPositions: number;
  /** The target's vocabulary: greedy steps take its argmax in two levels (vocab-reductions.ts). */
  vocabSize: number;
  /**
   * Carry each cache padded once to the rows the run can reach and write each step's row in place
   * (reserved-cache.ts), so that every step runs on the same shapes; default false: caches at their exact
   * length, as the host engine feeds them.
   */
  reserveRows?: boolean;
}

/**
 * Where a reserving vanilla loop's caches keep their rows: the rank of the carried value and its row axis
 * (carriedCache's layouts), so the host can feed `reserve_pads` (reservePads).
 */
export function reservedRowsLayout(exported: ModelProto, attention: DecodeAttention = 'graph'): { rank: 3 | 4; rowAxis: 1 | 2 } {
  if (attention === 'gqa') return { rank: 4, rowAxis: 2 };
  return { rank: cacheCarryOf(exported, TARGET_IO.pastKey(0)).rank, rowAxis: 1 };
}

/** `reserve_pads` for `extraRows` rows after each cache's own (zeros elsewhere). */
export function reservePads(layout: { rank: number; rowAxis: number }, extraRows: number): bigint[] {
  const pads = new Array<bigint>(2 * layout.rank).fill(0n);
  pads[layout.rank + layout.rowAxis] = BigInt(extraRows);
  return pads;
}

/**
 * Wraps a decoded target graph (the contract's target.onnx) into the vanilla_loop model. With
 * `sampling`, each step draws by inverse CDF with one of the `uniforms` instead of taking the argmax.
 */
export function buildVanillaLoopModel(exported: ModelProto, kv: LoopKvLayout, options: VanillaLoopOptions): ModelProto {
  const { numLayers, dtype } = kv;
  const gqa = options.attention === 'gqa';
  if (!(Number.isInteger(options.maxPositions) && options.maxPositions > 0)) throw new Error(`vanilla_loop: maxPositions must be a positive integer, not ${options.maxPositions}`);
  const layers = Array.from({ length: numLayers }, (_, i) => i);
  const targetInputs = new Set(exported.graph.input.map((i) => i.name));
  const expected = [TARGET_IO.inputIds, TARGET_IO.positionIds, TARGET_IO.attentionBias, ...layers.flatMap((i) => [TARGET_IO.pastKey(i), TARGET_IO.pastValue(i)])];
  for (const name of expected) if (!targetInputs.has(name)) throw new Error(`target graph has no input ${name}`);
  if (targetInputs.size !== expected.length) throw new Error(`target graph has inputs beyond the contract's: ${[...targetInputs].join(', ')}`);
  // Each cache is carried in the layout in which the target graph concatenates it (carriedDecoder); with
  // GroupQueryAttention, head-major as its present output. Without it, RoPE reads tables computed once per
  // run (GroupQueryAttention rotates q and k from its own tables).
  const decoder = carriedDecoder(exported, numLayers);
  const tabled = gqa ? undefined : rotaryFromTables(decoder.graph, dtype);
  const logits = logitsBeforeArgmax(exported);
  const reserve = options.reserveRows === true;
  const decoding = tabled ? (reserve ? writeRowsInPlace(tabled.graph, decoder.carries) : tabled.graph) : gqaDecodeTarget(exported, kv, reserve ? 'reserved' : 'one row');
  // Greedy steps take the argmax of the logits in two levels; sampling steps do not take it at all.
  const target = options.sampling ? decoding : decoderArgmaxInTwoLevels(decoding, options.vocabSize).model;

  const opset = target.opset_import.find((o) => (o.domain ?? '') === '')?.version;
  const outer = new GraphBuilder(LOOP_GRAPH, { opsetVersion: opset, irVersion: target.ir_version });
  const b = new GraphBuilder(`${LOOP_GRAPH}/body`, { opsetVersion: opset, irVersion: target.ir_version });
  const targetGraph = new InlinableGraph(target, 'target', outer, new Map());
  for (const init of outer.toGraph().adoptedInitializers ?? []) b.outerValue(init.name!);
  // Reserved rows: the host feeds the rows in use, the Pad's pads and the rows' ids; computed in the outer graph
  // they would be shape arithmetic that onnxruntime places on the CPU (refused by strictDevice).
  const reservedLayout = reserve ? reservedRowsLayout(exported, options.attention) : undefined;
  if (reservedLayout) {
    outer.input(LOOP_IO.cachedRows, 'int64', [1]);
    outer.input(LOOP_IO.reservePads, 'int64', [2 * reservedLayout.rank]);
    outer.input(LOOP_IO.reservedRowIds, 'int64', [DIM_RESERVED]);
  }

  const caches = decoderCaches(
    outer,
    decoder,
    kv,
    DIM_CACHED,
    { input: LOOP_IO.cacheKey, body: BODY.key, final: LOOP_IO.finalKey },
    { input: LOOP_IO.cacheValue, body: BODY.value, final: LOOP_IO.finalValue },
    { headMajor: gqa ? { key: GQA_IO.presentKey, value: GQA_IO.presentValue } : undefined, reserve: reserve ? LOOP_IO.reservePads : undefined },
  );
  // The rows' ids shaped for the bias's columns and, where the graph writes rows in place, for its write mask.
  const reserved = reservedLayout && outer.scope('reserve', () => reservedRowIdShapes(outer, LOOP_IO.reservedRowIds, gqa ? undefined : reservedLayout.rank));
  if (reserved) for (const value of [LOOP_IO.cachedRows, reserved.columns, ...(reserved.rows ? [reserved.rows] : [])]) b.outerValue(value, 'int64');
  const rotary = gqa || tabled?.rewritten ? rotaryCaches(outer, targetGraph.valueName({ prefix: '', inputs: {} }, ROPE_INV_FREQ), options.maxPositions, dtype) : undefined;
  if (rotary) for (const table of [rotary.cos, rotary.sin]) b.outerValue(table, dtype);
  const carried: CarriedValue[] = [{ outer: LOOP_IO.firstToken, body: BODY.token, final: LOOP_IO.finalToken, dtype: 'int64', shape: [1] }, ...caches.map((c) => c.carried)];
  declareCarried(outer, b, carried);
  outer.input(LOOP_IO.maxSteps, 'int64', []);
  outer.input(LOOP_IO.stopIds, 'int64', [DIM_STOP]);
  b.outerValue(LOOP_IO.stopIds, 'int64');
  if (options.sampling) {
    outer.input(LOOP_IO.temperature, 'float32', []);
    outer.input(LOOP_IO.uniforms, 'float32', [DIM_STEPS]);
    b.outerValue(LOOP_IO.temperature, 'float32');
    b.outerValue(LOOP_IO.uniforms, 'float32');
    if (options.sampling === 'nucleus') {
      outer.input(LOOP_IO.topP, 'float32', []);
      b.outerValue(LOOP_IO.topP, 'float32');
    }
  }

  // Prologue: the step's token at position L (the cache's row count), seeing every cached row and itself.
  const i64 = (values: number[]) => b.constant('int64', values);
  const stepInputs = b.scope('step', () => {
    // [1]: L, the cached rows before this step's.
    const rows = reserved ? b.op('Add', [LOOP_IO.cachedRows, b.op('Reshape', [LOOP_BODY.iteration, i64([1])])]) : b.op('Shape', [BODY.key(0)], gqa ? { start: 2, end: 3 } : { start: 1, end: 2 });
    const masks = reserved && reservedStepMasks(b, reserved, rows);
    const bias = masks
      ? masks.bias
      : b.op('Expand', [b.constant('float32', [0], [1, 1, 1, 1]), b.op('Concat', [i64([1, 1, 1]), b.op('Add', [rows, i64([1])])], { axis: 0 })]);
    const stepInputs: Record<string, string> = {
      [TARGET_IO.inputIds]: b.op('Reshape', [BODY.token, i64([1, 1])]),
      [TARGET_IO.positionIds]: b.op('Reshape', [rows, i64([1, 1])]),
      [TARGET_IO.attentionBias]: bias,
    };
    for (const cache of caches) stepInputs[cache.past] = cache.body;
    if (masks?.writeRow) stepInputs[RESERVED_IO.writeRow(reservedLayout!.rank)] = masks.writeRow;
    if (rotary && tabled) Object.assign(stepInputs, { [ROTARY_TABLE_IO.cos]: rotary.cos, [ROTARY_TABLE_IO.sin]: rotary.sin });
    if (rotary && gqa) {
      const int32 = (value: string) => b.op('Cast', [value], { to: ONNX_DATA_TYPE.int32 });
      Object.assign(stepInputs, {
        [GQA_IO.seqlensK]: int32(rows),
        [GQA_IO.totalLength]: int32(b.op('Add', [rows, i64([1])])),
        [GQA_IO.cosCache]: rotary.cos,
        [GQA_IO.sinCache]: rotary.sin,
      });
    }
    return stepInputs;
  });
  const stepCall = { prefix: '@step', inputs: stepInputs };
  const step = targetGraph.call(b, stepCall);

  // Epilogue: each cache grows by its new row, choose the next token, test for a stop id. The target
  // graph already concatenates past and new rows for its attention: that value is the next cache.
  const epilogue = b.scope('next', () => {
    const updated = new Map<string, string>();
    for (const { body, carry, newRows } of caches) {
      updated.set(body, carry.concat === undefined ? b.op('Concat', [body, step[newRows]], { axis: 1 }) : targetGraph.valueName(stepCall, carry.concat));
    }
    let token: string;
    if (options.sampling) {
      const stepLogits = b.op('Cast', [b.op('Reshape', [targetGraph.valueName(stepCall, logits), i64([1, -1])])], { to: ONNX_DATA_TYPE.float32 });
      const p = samplingProbabilities(b, stepLogits, LOOP_IO.temperature, options.sampling === 'nucleus' ? LOOP_IO.topP : undefined, options.vocabSize);
      const u = b.op('Gather', [LOOP_IO.uniforms, LOOP_BODY.iteration], { axis: 0 });
      token = b.op('Reshape', [drawFrom(b, b.op('Reshape', [p, i64([-1])]), u, options.vocabSize), i64([1])]);
    } else token = b.op('Reshape', [step[TARGET_IO.argmax], i64([1])]);
    updated.set(BODY.token, token);
    return { updated, token, cond: noStopIdAmong(b, token, LOOP_IO.stopIds) };
  });

  addLoop(outer, b, {
    name: LOOP_GRAPH,
    maxSteps: LOOP_IO.maxSteps,
    carried,
    updated: epilogue.updated,
    cond: epilogue.cond,
    scans: [{ value: epilogue.token, name: LOOP_IO.tokens, dtype: 'int64', shape: [1] }],
    iterationsDim: DIM_STEPS,
  });
  for (const cache of caches) cache.finish();
  for (const entry of target.metadata_props ?? []) outer.setMetadata(entry.key, entry.key === 'fr-spec.graph' ? LOOP_GRAPH : entry.value);
  return outer.toModel();
}

/** The external data files (ONNX `location`s, relative to the model file) a model's initializers point at. */
export function externalDataLocations(model: ModelProto): string[] {
  const locations = new Set<string>();
  for (const init of model.graph.initializer) for (const entry of init.external_data ?? []) if (entry.key === 'location') locations.add(entry.value);
  return [...locations];
}
