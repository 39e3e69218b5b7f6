/**
 * `eagle_loop`: EAGLE-2 (and FR-Spec: the same with a subset draft head) greedy speculative decoding
 * compiled into one ONNX `Loop` whose body is one whole speculative iteration, so both KV caches stay
 * on the execution provider (docs/fused-loop.md). It reproduces the host engine's
 * src/engine/methods/eagle.ts step for step:
 *
 * 1. draft: the head's top-k of the root (from the carried `root_out`), then depth − 1 expansions,
 *    each feeding the best k candidates of the previous level through the EAGLE graph (scratch K/V
 *    rows concatenated after its cache, each candidate seeing its ancestors' rows and itself) and the
 *    draft head; candidates are scored by cumulative clamped log-probability and the tree is the
 *    root plus the best (tokens − 1) candidates in candidate order (TopK breaks ties toward the lower
 *    index, as the host's CandidatePool does);
 * 2. verify: one target forward over the tree (ancestor mask from powers of the parent matrix);
 * 3. accept: a node is accepted when every node on its path matches its parent's argmax; the deepest
 *    accepted node gives the path, the bonus token and the count n;
 * 4. commit: the target's caches keep their L rows and the path's rows (one Gather from the verify
 *    forward's own concatenation of cache and tree rows); the head catches up on the n committed
 *    tokens (fed with the target's features at the path) and appends their rows to its caches, and
 *    its last `out` becomes the next `root_out`.
 *
 * Both caches are carried at their exact length L (the rows they hold), so every forward sees the
 * past the host engine's forward sees: no padded rows, no mask over unused rows. The tree's shape is
 * fixed at build time; the acceptance length n is the row count of the catch-up and of the appended
 * rows. Every graph of the model folder is inlined as is (src/model/onnx/inline.ts): weights stay in
 * weights.data, loaded once.
 *
 * Inputs:  root_token [1] int64 (last committed token, in neither cache), root_out [1,d] (the head's
 *          output for it), cache_key_i / cache_value_i [1,L,kvH,D] (target), eagle_key_j /
 *          eagle_value_j [1,L,kvH,D] (head, the same L), max_steps [] int64 (iterations), max_tokens
 *          [] int64 (stop once this many tokens are committed), stop_ids [K].
 * Outputs: blocks [N, depth+1] int64 (committed tokens of each iteration, −1 after the first counts[i]),
 *          counts [N] int64, final_root_token, final_root_out, final_* caches [1,L',kvH,D].
 */
import { MASKED } from '../../engine/attention-bias.js';
import { bucketSize } from '../../engine/buckets.js';
import { EAGLE_IO } from '../eagle-graph.js';
import { TARGET_IO } from '../llama-graph.js';
import { HEAD_IO } from '../lm-head-graph.js';
import { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import { InlinableGraph } from '../onnx/inline.js';
import type { ModelProto } from '../onnx/proto.js';
import { addLoop, committedBlock, declareCarried, declareRunInputs, decoderCaches, LOOP_BODY, logitsBeforeArgmax, noStopIdAmong, paddedChain, rotaryTableInputs, SPECULATIVE_LOOP_IO, type CarriedValue } from './loop-ops.js';
import { decoderExtendingCaches } from './attention-past.js';
import { rotaryFromTables } from './rotary-tables.js';
import { decoderArgmaxInTwoLevels, topkInputOf, twoLevelVocabReductions } from './vocab-reductions.js';
import { nucleus, samplingProbabilities } from './sampling-ops.js';
import { greedyTreeWalk, samplingTreeWalk, treeAncestry, type GraphTree } from './tree-walks.js';
import type { LoopKvLayout } from './vanilla-loop.js';

export const EAGLE_LOOP_GRAPH = 'eagle_loop';
/** The caches' row count (it grows inside the Loop). */
export const EAGLE_DIM_CACHED = 'cached_rows';

/** Sampling graphs' uniforms: [max_steps, depth+1, uniformsPerLevel]. */
export const EAGLE_LOOP_IO = {
  ...SPECULATIVE_LOOP_IO,
  rootToken: 'root_token',
  rootOut: 'root_out',
  eagleKey: (j: number) => `eagle_key_${j}`,
  eagleValue: (j: number) => `eagle_value_${j}`,
  finalRootToken: 'final_root_token',
  finalRootOut: 'final_root_out',
  finalEagleKey: (j: number) => `final_eagle_key_${j}`,
  finalEagleValue: (j: number) => `final_eagle_value_${j}`,
} as const;

export interface EagleLoopTree {
  /** Most drafted tokens on one path. */
  depth: number;
  /** Children per expanded node and nodes expanded per level (already capped by the head's vocabulary). */
  topK: number;
  /** Verified tokens per iteration, root included. */
  tokens: number;
}

export interface EagleLoopGraphs {
  target: ModelProto;
  eagle: ModelProto;
  /** The draft head: lm_head.onnx, or an FR-Spec subset head. */
  head: ModelProto;
  targetKv: LoopKvLayout;
  eagleKv: LoopKvLayout;
  hiddenSize: number;
  tree: EagleLoopTree;
  /**
   * Build the sampling variant: the walk over the tree is EAGLE-2's target-only multi-draft rejection
   * (src/engine/tree-verify.ts sequentialSamplingWalk) at `temperature` (top-p 1), driven by the
   * `uniforms` input; 'nucleus' adds top-p truncation (input `top_p`). Default greedy.
   */
  sampling?: 'plain' | 'nucleus';
  /**
   * The longest context the caches may hold. The loop's RoPE tables (rotary-tables.ts, computed once
   * per run) cover it plus the positions a last cycle drafts and verifies past it (depth + 1).
   */
  contextLength: number;
  /** The target's vocabulary and the draft head's (a subset for FR-Spec): the verify's argmax and the head's top-k are taken in two levels (vocab-reductions.ts). */
  vocabSize: number;
  headVocabSize: number;
}

/** Uniforms one level of the sampling walk consumes: one per child tried, one for the final draw. */
export function uniformsPerLevel(tree: EagleLoopTree): number {
  return Math.min(tree.topK, verifiedTokens(tree)) + 1;
}

/** Candidates the draft produces per iteration: the root's k, then k² per further level. */
export function candidateCount({ depth, topK }: EagleLoopTree): number {
  return topK + (depth - 1) * topK * topK;
}

/** Tokens verified per iteration: the root plus at most every candidate. */
export function verifiedTokens(tree: EagleLoopTree): number {
  return Math.min(tree.tokens, 1 + candidateCount(tree));
}

const CARRIED = {
  rootToken: 'it/root_token',
  rootOut: 'it/root_out',
  generated: 'it/generated',
  targetKey: (i: number) => `it/target_key_${i}`,
  targetValue: (i: number) => `it/target_value_${i}`,
  eagleKey: (j: number) => `it/eagle_key_${j}`,
  eagleValue: (j: number) => `it/eagle_value_${j}`,
};

export function buildEagleLoopModel(graphs: EagleLoopGraphs): ModelProto {
  const { targetKv, eagleKv, hiddenSize: d, tree } = graphs;
  const { depth, topK: k } = tree;
  if (!(depth >= 1 && k >= 1 && tree.tokens >= 2)) throw new Error(`eagle_loop: bad tree shape ${JSON.stringify(tree)}`);
  const dtype = targetKv.dtype;
  const T = verifiedTokens(tree);
  const N = candidateCount(tree);
  const B = depth + 1; // committed tokens per iteration, at most
  const opset = graphs.target.opset_import.find((o) => (o.domain ?? '') === '')?.version;

  const outer = new GraphBuilder(EAGLE_LOOP_GRAPH, { opsetVersion: opset, irVersion: graphs.target.ir_version });
  const body = new GraphBuilder(`${EAGLE_LOOP_GRAPH}/body`, { opsetVersion: opset, irVersion: graphs.target.ir_version });
  const shared = new Map<string, string>();
  if (!(Number.isInteger(graphs.contextLength) && graphs.contextLength > 0)) throw new Error(`eagle_loop: contextLength must be a positive integer, not ${graphs.contextLength}`);
  // The target's and the EAGLE layer's caches are carried head-major where their Attention nodes can extend
  // them (attention-past.ts: two Concats fewer per layer and forward), else in the layout in which their
  // graphs concatenate them (carriedDecoder); the expansions append their rows in that layout too (scratch rows).
  const targetDecoder = decoderExtendingCaches(graphs.target, targetKv);
  const eagleDecoder = decoderExtendingCaches(graphs.eagle, eagleKv);
  // RoPE reads tables computed once per run (one pair per graph: each has its own inv_freq).
  const targetTabled = rotaryFromTables(targetDecoder.graph, dtype);
  const eagleTabled = rotaryFromTables(eagleDecoder.graph, eagleKv.dtype);
  const verifyGraph = decoderArgmaxInTwoLevels(targetTabled.graph, graphs.vocabSize).model;
  const head = twoLevelVocabReductions(graphs.head, [{ input: topkInputOf(graphs.head, HEAD_IO.topkLogprobs), rank: 2, vocab: graphs.headVocabSize, maxK: k }]).model;
  const targetGraph = new InlinableGraph(verifyGraph, 'target', outer, shared);
  const eagleGraph = new InlinableGraph(eagleTabled.graph, 'eagle', outer, shared);
  const headGraph = new InlinableGraph(head, 'head', outer, shared);
  for (const init of outer.toGraph().adoptedInitializers ?? []) body.outerValue(init.name!);
  const tableRows = graphs.contextLength + depth + 1;
  const targetTables = outer.scope('target', () => rotaryTableInputs(outer, body, targetGraph, targetTabled, tableRows, dtype));
  const eagleTables = outer.scope('eagle', () => rotaryTableInputs(outer, body, eagleGraph, eagleTabled, tableRows, eagleKv.dtype));
  const targetCaches = decoderCaches(
    outer,
    targetDecoder,
    targetKv,
    EAGLE_DIM_CACHED,
    { input: EAGLE_LOOP_IO.targetKey, body: CARRIED.targetKey, final: EAGLE_LOOP_IO.finalTargetKey },
    { input: EAGLE_LOOP_IO.targetValue, body: CARRIED.targetValue, final: EAGLE_LOOP_IO.finalTargetValue },
    { headMajor: targetDecoder.presents },
  );
  // The EAGLE layer's caches hold the same rows as the target's.
  const eagleCaches = decoderCaches(
    outer,
    eagleDecoder,
    eagleKv,
    EAGLE_DIM_CACHED,
    { input: EAGLE_LOOP_IO.eagleKey, body: CARRIED.eagleKey, final: EAGLE_LOOP_IO.finalEagleKey },
    { input: EAGLE_LOOP_IO.eagleValue, body: CARRIED.eagleValue, final: EAGLE_LOOP_IO.finalEagleValue },
    { headMajor: eagleDecoder.presents },
  );
  // The loop-carried values, in the one order the Loop's inputs, the body's inputs and outputs and the
  // Loop's outputs all follow. `outer` undefined: initialized inside the outer graph, never fed or fetched.
  const carried: CarriedValue[] = [
    { outer: EAGLE_LOOP_IO.rootToken, body: CARRIED.rootToken, final: EAGLE_LOOP_IO.finalRootToken, dtype: 'int64', shape: [1] },
    { outer: EAGLE_LOOP_IO.rootOut, body: CARRIED.rootOut, final: EAGLE_LOOP_IO.finalRootOut, dtype, shape: [1, d] },
    { initial: outer.initializer('eagle_loop/zero', 'int64', [], [0]), body: CARRIED.generated, final: 'final_generated', dtype: 'int64', shape: [] },
    ...targetCaches.map((c) => c.carried),
    ...eagleCaches.map((c) => c.carried),
  ];
  declareCarried(outer, body, carried);
  declareRunInputs(outer, body, graphs.sampling, ['max_steps', depth + 1, uniformsPerLevel(tree)]);

  const b = body;

  const i64 = (values: number[]) => b.constant('int64', values);
  const s64 = (value: number) => b.scalar('int64', value);
  // The rows both caches hold: L.
  const rowAxis = targetCaches[0]!.rowAxis;
  const cachedRows = b.op('Shape', [CARRIED.targetKey(0)], { start: rowAxis, end: rowAxis + 1 }); // [1]
  const length = b.op('Squeeze', [cachedRows, i64([0])]);
  // Masks are additive float biases (0 or MASKED), built from constants by Gathers and scatters: every op then
  // has a kernel on CUDA too.
  /** Additive attention bias [1,1,S,L+X]: every cached row, then the extra columns' additive bias [S,X]. */
  const biasOf = (rowCount: number, extraColumns: string) => {
    const cacheColumns = b.op('Expand', [b.constant('float32', [0], [1, 1]), b.op('Concat', [i64([rowCount]), cachedRows], { axis: 0 })]);
    return b.op('Unsqueeze', [b.op('Concat', [cacheColumns, extraColumns], { axis: 1 }), i64([0, 1])]);
  };
  const positionsAt = (offsets: string, count: number) => b.op('Reshape', [b.op('Add', [length, offsets]), i64([1, count])]);
  const clampLogprob = (lp: string) => b.op('Where', [b.op('IsNaN', [lp]), b.scalar('float32', -Infinity), b.op('Min', [lp, b.scalar('float32', 0)])]);
  /**
   * The host engine feeds a decoder bucketSize(S) rows for S real ones (src/engine/decoder.ts); the
   * loop pads the same way, so each forward has the host's shapes, hence its kernels and rounding.
   * Padding rows repeat row 0 (`padIndex`: 0 … S−1 then zeros); no real row sees them, and each
   * output is cut back to the S real rows.
   */
  const padIndex = (rows: number) => i64([...range(rows), ...new Array<number>(bucketSize(rows) - rows).fill(0)]);
  const firstRows = (value: string, rows: number, axis: number) => b.op('Slice', [value, i64([0]), i64([rows]), i64([axis])]);
  const cat = (parts: string[], axis = 0) => (parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis }));
  const runHead = (hidden: string, label: string) => headGraph.call(b, { prefix: `@head_${label}`, inputs: { [HEAD_IO.hidden]: hidden, [HEAD_IO.topK]: i64([k]) } });

  // ---- 1. Draft ----
  // Every per-row value of an expansion is built at its padded row count kb from the start (rows k … kb−1
  // repeat row 0), in the shape the EAGLE graph reads, so no expansion pads, reshapes or concatenates
  // its inputs separately.
  const draft = b.scope('draft', () => {
    const kb = bucketSize(k);
    const rowsPadded = padIndex(k); // [kb]
    const root = runHead(CARRIED.rootOut, 'root');
    const rootIds = b.op('Reshape', [root[HEAD_IO.topkIds], i64([1, k])]);
    const rootScores = clampLogprob(b.op('Reshape', [root[HEAD_IO.topkLogprobs], i64([k])]));
    const tokens = [rootIds]; // [1,k] then [1,k²] per expansion
    const scores = [rootScores];
    const picks: string[] = []; // each level's TopK: indices of the k expanded nodes among its k² children
    let frontierScores = rootScores;
    let inputIds = kb === k ? rootIds : b.op('Gather', [rootIds, rowsPadded], { axis: 1 }); // [1,kb]
    let feature = b.op('Expand', [b.op('Reshape', [CARRIED.rootOut, i64([1, 1, d])]), i64([1, kb, 1])]); // [1,kb,d]
    let ancestors: string | undefined; // [1,1,kb,e·k] additive bias: the earlier expansions' rows each frontier node sees
    // The past each EAGLE cache feeds the next expansion: the cache, then k rows per earlier expansion.
    let pasts = eagleCaches.map((cache) => cache.body);

    // Each candidate sees itself among the kb rows of its expansion (a padding row: row 0's), and every cached row.
    const self = b.constant('float32', range(kb * kb).map((x) => (x % kb === (Math.floor(x / kb) < k ? Math.floor(x / kb) : 0) ? 0 : MASKED)), [1, 1, kb, kb]);
    const cacheColumns = b.op('Expand', [b.constant('float32', [0], [1, 1, 1, 1]), b.op('Concat', [i64([1, 1, kb]), cachedRows], { axis: 0 })]); // [1,1,kb,L]
    // Row r < k of an expansion sees only its own scratch row r among that expansion's k kept rows.
    const ownRow = b.constant('float32', range(kb * k).map((x) => (x % k === Math.floor(x / k) ? 0 : MASKED)), [1, 1, kb, k]);
    const lengthRow = b.op('Reshape', [length, i64([1, 1])]);
    for (let e = 0; e < depth - 1; e++) {
      const inputs: Record<string, string> = {
        [EAGLE_IO.inputIds]: inputIds,
        [EAGLE_IO.feature]: feature,
        [EAGLE_IO.positionIds]: b.op('Add', [lengthRow, b.constant('int64', new Array<number>(kb).fill(e), [1, kb])]),
        [EAGLE_IO.attentionBias]: b.op('Concat', [cacheColumns, ...(ancestors === undefined ? [] : [ancestors]), self], { axis: 3 }),
        ...eagleTables,
      };
      eagleCaches.forEach((cache, c) => (inputs[cache.past] = pasts[c]));
      const call = { prefix: `@eagle_expand_${e}`, inputs };
      const expanded = eagleGraph.call(b, call);
      // The next past: this one and the expansion's k real rows. Where the graph concatenates its past and
      // new rows itself (in the carried layout), that concatenation less its kb − k padding rows.
      pasts = eagleCaches.map((cache, c) => {
        if (cache.carry.concat === undefined) return b.op('Concat', [pasts[c], kb === k ? expanded[cache.newRows] : firstRows(expanded[cache.newRows], k, 1)], { axis: 1 });
        const concatenated = eagleGraph.valueName(call, cache.carry.concat);
        return kb === k ? concatenated : b.op('Slice', [concatenated, i64([0]), i64([k - kb]), i64([cache.rowAxis])]);
      });
      const out = kb === k ? expanded[EAGLE_IO.out] : firstRows(expanded[EAGLE_IO.out], k, 1); // [1,k,d]
      const top = runHead(b.op('Reshape', [out, i64([k, d])]), `expand_${e}`);
      const childScores = b.op('Reshape', [b.op('Add', [b.op('Unsqueeze', [frontierScores, i64([1])]), clampLogprob(top[HEAD_IO.topkLogprobs])]), i64([k * k])]);
      const childTokens = b.op('Reshape', [top[HEAD_IO.topkIds], i64([1, k * k])]);
      tokens.push(childTokens);
      scores.push(childScores);
      if (e === depth - 2) break;
      const [bestScores, best] = b.node('TopK', [childScores, i64([k])], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
      picks.push(best);
      frontierScores = bestScores;
      const bestPadded = kb === k ? best : b.op('Gather', [best, rowsPadded], { axis: 0 }); // [kb]
      const parentRow = b.op('Div', [bestPadded, s64(k)]); // the row of this expansion each next frontier node hangs off
      inputIds = b.op('Gather', [childTokens, bestPadded], { axis: 1 });
      feature = b.op('Gather', [out, parentRow], { axis: 1 });
      // A frontier node sees its parent's ancestors and its parent (one of this expansion's k rows): the
      // parent's row of [ancestors ‖ ownRow], one Gather.
      ancestors = b.op('Gather', [ancestors === undefined ? ownRow : b.op('Concat', [ancestors, ownRow], { axis: 3 }), parentRow], { axis: 2 });
    }
    // Candidate c's parent: N (no candidate: the root) for the root's k; else node j of a level's frontier when c
    // is among that node's k children, read from one table: N, the root's candidates, then each TopK's picks as
    // global indices.
    const slots = range(N).map((c) => (c < k ? 0 : 1 + Math.floor((c - k) / k)));
    const fixedParents = [N, ...range(k)];
    const parents =
      picks.length === 0
        ? i64(slots.map((slot) => fixedParents[slot]!))
        : b.op('Gather', [b.op('Concat', [i64(fixedParents), b.op('Add', [cat(picks), i64(picks.flatMap((_, e) => new Array<number>(k).fill(k + e * k * k)))])], { axis: 0 }), i64(slots)], { axis: 0 });
    return { tokens: b.op('Reshape', [cat(tokens, 1), i64([N])]), scores: cat(scores), parents };
  });

  // ---- The tree: root + the best T − 1 candidates, in candidate order ----
  const treeOf = b.scope('tree', () => {
    const chosenCount = i64([T - 1]);
    const [, bestIndices] = b.node('TopK', [draft.scores, chosenCount], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
    // The chosen candidates in candidate order: the smallest indices first (TopK over int64 indices).
    const [chosen] = b.node('TopK', [bestIndices, chosenCount], { outputs: 2, attributes: { axis: 0, largest: 0, sorted: 1 } });
    const candidateDepths = i64(range(N).map((c) => (c < k ? 1 : 2 + Math.floor((c - k) / (k * k)))));
    const parentCandidate = b.op('Gather', [draft.parents, chosen], { axis: 0 });
    // Node of each chosen candidate's parent: 1 + its place among the chosen, read from a table indexed by
    // candidate (0 for the root's children, whose parent is the table's last entry N, and for a parent not
    // chosen). Gathers and a scatter: CUDA's ReduceMax and small fp32 MatMuls cost far more per node.
    const nodeOfCandidate = b.op('ScatterElements', [b.constant('int64', new Array<number>(N + 1).fill(0)), chosen, i64(range(T - 1).map((i) => i + 1))], { axis: 0 });
    const parentNode = b.op('Gather', [nodeOfCandidate, parentCandidate], { axis: 0 });
    const tokens = b.op('Concat', [CARRIED.rootToken, b.op('Gather', [draft.tokens, chosen], { axis: 0 })], { axis: 0 });
    const parents = b.op('Concat', [i64([0]), parentNode], { axis: 0 }); // the root is its own parent
    const depths = b.op('Concat', [i64([0]), b.op('Gather', [candidateDepths, chosen], { axis: 0 })], { axis: 0 });
    const { ancestors, bias } = treeAncestry(b, parents, T, depth, MASKED);
    return { tokens, parents, depths, ancestors, bias };
  });

  // ---- 2. Verify (T tree nodes, padded to bucketSize(T) rows as the host pads them) ----
  const Tb = bucketSize(T);
  const padTree = (value: string) => (Tb === T ? value : b.op('Gather', [value, padIndex(T)], { axis: 0 }));
  const treeColumns = Tb === T ? treeOf.bias : b.op('Concat', [treeOf.bias, b.constant('float32', new Array<number>(T * (Tb - T)).fill(MASKED), [T, Tb - T])], { axis: 1 });
  const verifyInputs: Record<string, string> = {
    [TARGET_IO.inputIds]: b.op('Reshape', [padTree(treeOf.tokens), i64([1, Tb])]),
    [TARGET_IO.positionIds]: positionsAt(padTree(treeOf.depths), Tb),
    [TARGET_IO.attentionBias]: b.scope('verify', () => biasOf(Tb, padTree(treeColumns))),
    ...targetTables,
  };
  for (const cache of targetCaches) verifyInputs[cache.past] = cache.body;
  const verifyCall = { prefix: '@verify', inputs: verifyInputs };
  const verified = targetGraph.call(b, verifyCall);

  // ---- 3. Accept ----
  /** The committed block from the path (node per depth), its length n and the token after it. */
  const blockOf = (pathNodes: string, count: string, next: string) => {
    const drafted = b.op('Concat', [b.op('Gather', [treeOf.tokens, b.op('Slice', [pathNodes, i64([1]), i64([B])])], { axis: 0 }), i64([-1])], { axis: 0 });
    const lastIndex = b.op('Sub', [count, s64(1)]);
    return { count, pathNodes, next, block: committedBlock(b, drafted, lastIndex, next, B), lastIndex };
  };
  const graphTree: GraphTree = { ...treeOf, size: T, depth };
  const greedyAccept = () => {
    const argmax = firstRows(b.op('Reshape', [verified[TARGET_IO.argmax], i64([Tb])]), T, 0);
    const walk = greedyTreeWalk(b, graphTree, argmax);
    return blockOf(walk.pathNodes, walk.count, walk.next);
  };
  const samplingAccept = () => {
    // The target's logits over the tree, on the device: the input of target.onnx's ArgMax.
    const logits = b.op('Cast', [firstRows(b.op('Reshape', [targetGraph.valueName(verifyCall, logitsBeforeArgmax(graphs.target)), i64([Tb, -1])]), T, 0)], { to: ONNX_DATA_TYPE.float32 });
    const probs = samplingProbabilities(b, logits, EAGLE_LOOP_IO.temperature, undefined, graphs.vocabSize); // [T,V]
    const uniforms = b.op('Gather', [EAGLE_LOOP_IO.uniforms, LOOP_BODY.iteration], { axis: 0 }); // [B, U]
    // Top-p: truncate only the rows the walk visits (one per level), not every verified node's.
    const truncate = (row: string) => b.op('Reshape', [nucleus(b, b.op('Unsqueeze', [row, i64([0])]), EAGLE_LOOP_IO.topP), i64([-1])]);
    const walk = samplingTreeWalk(b, graphTree, probs, uniforms, k, graphs.sampling === 'nucleus' ? truncate : undefined, graphs.vocabSize);
    return blockOf(walk.pathNodes, walk.count, walk.next);
  };
  const accept = b.scope('accept', () => (graphs.sampling ? samplingAccept() : greedyAccept()));

  // ---- 4. Commit: the accepted rows appended to both caches ----
  const committedCount = b.op('Reshape', [accept.count, i64([1])]); // [1]: n, on the device
  const committedPath = b.op('Slice', [accept.pathNodes, i64([0]), committedCount]); // [n]: n's one copy to the host
  // n again, read from the path's shape: a host value, so the shapes that follow (the catch-up's rows, the head's
  // cache length) wait for no further copy from the device, each of which would drain the GPU's queue.
  const committedRows = b.op('Shape', [committedPath]); // [1]
  const append = (cache: string, rows: string) => b.op('Concat', [cache, rows], { axis: 1 });
  // The verify forward already concatenated each cache with the tree's rows: the next cache is its rows
  // 0 … L−1 and L + (the path's nodes), one Gather instead of a Gather and a Concat.
  const keptRows = b.op('Concat', [b.op('Range', [s64(0), length, s64(1)]), b.op('Add', [committedPath, length])], { axis: 0 }); // [L+n]
  const committedTargetCaches = targetCaches.map(({ body, carry, newRows, rowAxis }): [string, string] => [
    body,
    carry.concat === undefined ? append(body, b.op('Gather', [verified[newRows], committedPath], { axis: 1 })) : b.op('Gather', [targetGraph.valueName(verifyCall, carry.concat), keptRows], { axis: rowAxis }),
  ]);

  // The head catches up on the n committed tokens, paired with the target's features at the path, in
  // bucketSize(n) rows as the host feeds them (padding rows repeat row 0).
  const catchUp = b.scope('catch_up', () => paddedChain(b, b.op('Squeeze', [committedRows, i64([0])]), B, cachedRows));
  const catchUpInputs: Record<string, string> = {
    [EAGLE_IO.inputIds]: b.op('Unsqueeze', [b.op('Gather', [accept.block, catchUp.source], { axis: 0 }), i64([0])]),
    [EAGLE_IO.feature]: b.op('Gather', [verified[TARGET_IO.hidden], b.op('Gather', [accept.pathNodes, catchUp.source], { axis: 0 })], { axis: 1 }),
    [EAGLE_IO.positionIds]: b.op('Unsqueeze', [b.op('Add', [length, catchUp.source]), i64([0])]),
    [EAGLE_IO.attentionBias]: catchUp.bias,
    ...eagleTables,
  };
  for (const cache of eagleCaches) catchUpInputs[cache.past] = cache.body;
  const catchUpCall = { prefix: '@eagle_catch_up', inputs: catchUpInputs };
  const caughtUp = eagleGraph.call(b, catchUpCall);
  // The head's next caches: its L cached rows and the n committed ones — the first L + n rows of the graph's
  // own concatenation of cache and the bucketSize(n) fed rows, one Slice.
  const committedLength = b.op('Add', [cachedRows, committedRows]); // [1]: L + n, on the host
  const committedEagleCaches = eagleCaches.map(({ body, carry, newRows, rowAxis }): [string, string] => [
    body,
    carry.concat === undefined
      ? append(body, b.op('Slice', [caughtUp[newRows], i64([0]), committedRows, i64([1])]))
      : b.op('Slice', [eagleGraph.valueName(catchUpCall, carry.concat), i64([0]), committedLength, i64([rowAxis])]),
  ]);

  const next = b.scope('next', () => {
    const rootOut = b.op('Reshape', [b.op('Gather', [caughtUp[EAGLE_IO.out], accept.lastIndex], { axis: 1 }), i64([1, d])]);
    const generated = b.op('Add', [CARRIED.generated, accept.count]);
    const cond = b.op('And', [noStopIdAmong(b, accept.block, EAGLE_LOOP_IO.stopIds), b.op('Less', [generated, EAGLE_LOOP_IO.maxTokens])]);
    return { rootOut, generated, cond, token: b.op('Reshape', [accept.next, i64([1])]) };
  });

  const updated = new Map<string, string>([
    [CARRIED.rootToken, next.token],
    [CARRIED.rootOut, next.rootOut],
    [CARRIED.generated, next.generated],
    ...committedTargetCaches,
    ...committedEagleCaches,
  ]);
  addLoop(outer, body, {
    name: EAGLE_LOOP_GRAPH,
    maxSteps: EAGLE_LOOP_IO.maxSteps,
    carried,
    updated,
    cond: next.cond,
    scans: [
      { value: accept.block, name: EAGLE_LOOP_IO.blocks, dtype: 'int64', shape: [B] },
      { value: accept.count, name: EAGLE_LOOP_IO.counts, dtype: 'int64', shape: [] },
    ],
    iterationsDim: 'iterations',
  });
  for (const cache of [...targetCaches, ...eagleCaches]) cache.finish();
  outer.setMetadata('fr-spec.graph', EAGLE_LOOP_GRAPH);
  outer.setMetadata('fr-spec.tree', JSON.stringify({ ...tree, verified: T }));
  return outer.toModel();
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
