/**
 * `sps_loop`: speculative sampling with a plain draft model (src/engine/methods/sps.ts) compiled into one
 * ONNX `Loop` whose body is one whole cycle, so the target's and the draft's caches stay on the
 * execution provider (docs/fused-loop.md). It reproduces the host method cycle for cycle:
 *
 * 1. draft: the draft model feeds the tokens it has not cached (`pending`: the last committed token,
 *    after a fully accepted cycle also the last draft before it, and on the first cycle the prompt's last
 *    chain chunk), then each new draft but the last, one forward each: γ forwards, γ drafts (argmax, or a
 *    draw from its distribution q);
 * 2. verify: one target forward over the chain [last committed token, drafts];
 * 3. accept: greedy, the drafts equal to the target's argmax before them, up to the first that is not,
 *    and the target's argmax after them; sampling, Leviathan/Chen rejection (accept x with probability
 *    min(1, p(x)/q(x)), at the first rejection a draw from norm(max(0, p − q)), after γ acceptances a
 *    draw from p);
 * 4. commit: the target keeps the chain's rows up to the accepted drafts (a prefix of its verify
 *    forward's own concatenation of cache and chain), the draft its rows up to them; the tokens neither
 *    has fed become the next `pending`.
 *
 * Every forward is fed the rows the host feeds it (bucketSize padding, padding rows repeating row 0), so
 * the shapes, hence the kernels and the rounding, are the host's. Both caches are carried at their exact
 * length, in the layout their graphs concatenate them in.
 *
 * Inputs:  pending [P] int64 (tokens the draft has not cached, the last committed one last; the target
 *          caches every committed token but that one), cache_key_i / cache_value_i [1,L,kvH,D] (target),
 *          draft_key_j / draft_value_j [1,L',kvH',D'] (draft), max_steps, max_tokens [] int64,
 *          stop_ids [K]; sampling graphs: temperature, uniforms [max_steps, 2γ+1], top_p (nucleus)
 *          (SPECULATIVE_LOOP_IO).
 * Outputs: blocks [N, γ+1] int64 (committed tokens per cycle, −1 after counts[i]), counts [N] int64,
 *          final_pending, final_* caches.
 */
import { MASKED } from '../../engine/attention-bias.js';
import { bucketSize } from '../../engine/buckets.js';
import { TARGET_IO } from '../llama-graph.js';
import { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import { InlinableGraph } from '../onnx/inline.js';
import type { ModelProto } from '../onnx/proto.js';
import { addLoop, committedBlock, declareCarried, declareRunInputs, decoderCaches, firstMaxIndex, LOOP_BODY, logitsBeforeArgmax, noStopIdAmong, paddedChain, SPECULATIVE_LOOP_IO, rotaryTableInputs, type CarriedValue } from './loop-ops.js';
import { decoderExtendingCaches } from './attention-past.js';
import { rotaryFromTables } from './rotary-tables.js';
import { decoderArgmaxInTwoLevels } from './vocab-reductions.js';
import { drawFrom, nucleus, samplingProbabilities } from './sampling-ops.js';
import type { LoopKvLayout } from './vanilla-loop.js';

export const SPS_LOOP_GRAPH = 'sps_loop';
const DIM_CACHED = 'cached_rows';
const DIM_DRAFT_CACHED = 'draft_cached_rows';

/** Sampling graphs' uniforms: [max_steps, 2γ+1] (γ draft draws, γ tests, the last draw). */
export const SPS_LOOP_IO = {
  ...SPECULATIVE_LOOP_IO,
  pending: 'pending',
  draftKey: (j: number) => `draft_key_${j}`,
  draftValue: (j: number) => `draft_value_${j}`,
  finalPending: 'final_pending',
  finalDraftKey: (j: number) => `final_draft_key_${j}`,
  finalDraftValue: (j: number) => `final_draft_value_${j}`,
} as const;

export interface SpsLoopGraphs {
  target: ModelProto;
  /** The draft model's decoder graph (draft.onnx). */
  draft: ModelProto;
  targetKv: LoopKvLayout;
  draftKv: LoopKvLayout;
  /** Drafts per cycle. */
  gamma: number;
  /** The most pending tokens a run may start with: the host's chain chunk (the first cycle feeds the prompt's last chunk). */
  maxPending: number;
  /** Build the sampling variant (rejection sampling, driven by `uniforms`); 'nucleus' adds top-p truncation. Default greedy. */
  sampling?: 'plain' | 'nucleus';
  /** The longest context the caches may hold: the RoPE tables cover it plus the γ + 1 positions a last cycle reaches past it. */
  contextLength: number;
  /** The target's and the draft's vocabularies: their argmax is taken in two levels (vocab-reductions.ts). */
  vocabSize: number;
  draftVocabSize: number;
}

/** Uniforms one cycle of the sampling variant consumes: a draw per draft, a test per draft, the last draw. */
export function spsUniformsPerCycle(gamma: number): number {
  return 2 * gamma + 1;
}

const CARRIED = {
  pending: 'it/pending',
  generated: 'it/generated',
  targetKey: (i: number) => `it/target_key_${i}`,
  targetValue: (i: number) => `it/target_value_${i}`,
  draftKey: (j: number) => `it/draft_key_${j}`,
  draftValue: (j: number) => `it/draft_value_${j}`,
};

export function buildSpsLoopModel(graphs: SpsLoopGraphs): ModelProto {
  const { gamma, targetKv, draftKv } = graphs;
  if (!(Number.isInteger(gamma) && gamma >= 1)) throw new Error(`sps_loop: gamma must be a whole number ≥ 1, not ${gamma}`);
  if (!(Number.isInteger(graphs.maxPending) && graphs.maxPending >= 2)) throw new Error(`sps_loop: maxPending must be a whole number ≥ 2, not ${graphs.maxPending}`);
  if (!(Number.isInteger(graphs.contextLength) && graphs.contextLength > 0)) throw new Error(`sps_loop: contextLength must be a positive integer, not ${graphs.contextLength}`);
  const opset = graphs.target.opset_import.find((o) => (o.domain ?? '') === '')?.version;
  const outer = new GraphBuilder(SPS_LOOP_GRAPH, { opsetVersion: opset, irVersion: graphs.target.ir_version });
  const b = new GraphBuilder(`${SPS_LOOP_GRAPH}/body`, { opsetVersion: opset, irVersion: graphs.target.ir_version });
  const shared = new Map<string, string>();
  // Caches carried head-major where the Attention nodes extend them (attention-past.ts), else as the graphs concatenate them.
  const targetDecoder = decoderExtendingCaches(graphs.target, targetKv);
  const draftDecoder = decoderExtendingCaches(graphs.draft, draftKv);
  const targetTabled = rotaryFromTables(targetDecoder.graph, targetKv.dtype);
  const draftTabled = rotaryFromTables(draftDecoder.graph, draftKv.dtype);
  const targetGraph = new InlinableGraph(decoderArgmaxInTwoLevels(targetTabled.graph, graphs.vocabSize).model, 'target', outer, shared);
  const draftGraph = new InlinableGraph(decoderArgmaxInTwoLevels(draftTabled.graph, graphs.draftVocabSize).model, 'draft', outer, shared);
  for (const init of outer.toGraph().adoptedInitializers ?? []) b.outerValue(init.name!);
  const tableRows = graphs.contextLength + gamma + 1;
  const targetTables = outer.scope('target', () => rotaryTableInputs(outer, b, targetGraph, targetTabled, tableRows, targetKv.dtype));
  const draftTables = outer.scope('draft', () => rotaryTableInputs(outer, b, draftGraph, draftTabled, tableRows, draftKv.dtype));
  const targetCaches = decoderCaches(
    outer,
    targetDecoder,
    targetKv,
    DIM_CACHED,
    { input: SPS_LOOP_IO.targetKey, body: CARRIED.targetKey, final: SPS_LOOP_IO.finalTargetKey },
    { input: SPS_LOOP_IO.targetValue, body: CARRIED.targetValue, final: SPS_LOOP_IO.finalTargetValue },
    { headMajor: targetDecoder.presents },
  );
  const draftCaches = decoderCaches(
    outer,
    draftDecoder,
    draftKv,
    DIM_DRAFT_CACHED,
    { input: SPS_LOOP_IO.draftKey, body: CARRIED.draftKey, final: SPS_LOOP_IO.finalDraftKey },
    { input: SPS_LOOP_IO.draftValue, body: CARRIED.draftValue, final: SPS_LOOP_IO.finalDraftValue },
    { headMajor: draftDecoder.presents },
  );
  const carried: CarriedValue[] = [
    { outer: SPS_LOOP_IO.pending, body: CARRIED.pending, final: SPS_LOOP_IO.finalPending, dtype: 'int64', shape: ['num_pending'] },
    { initial: outer.initializer('sps_loop/zero', 'int64', [], [0]), body: CARRIED.generated, final: 'final_generated', dtype: 'int64', shape: [] },
    ...targetCaches.map((c) => c.carried),
    ...draftCaches.map((c) => c.carried),
  ];
  declareCarried(outer, b, carried);
  declareRunInputs(outer, b, graphs.sampling, ['max_steps', spsUniformsPerCycle(gamma)]);

  const i64 = (values: number[]) => b.constant('int64', values);
  const s64 = (value: number) => b.scalar('int64', value);
  const rowsOf = (cache: { body: string; rowAxis: number }) => b.op('Shape', [cache.body], { start: cache.rowAxis, end: cache.rowAxis + 1 }); // [1]
  const scalarOf = (value: string) => b.op('Squeeze', [value, i64([0])]);
  const firstRows = (value: string, rows: string, axis: number) => b.op('Slice', [value, i64([0]), rows, i64([axis])]);
  const draftLogits = logitsBeforeArgmax(graphs.draft);
  /** The draft's logits at one row (`row`, [] int64) of a forward, as float32 [1,V]. */
  const draftLogitsRow = (call: { prefix: string; inputs: Record<string, string> }, row: string) =>
    b.op('Cast', [b.op('Gather', [b.op('Squeeze', [draftGraph.valueName(call, draftLogits), i64([0])]), b.op('Reshape', [row, i64([1])])], { axis: 0 })], { to: ONNX_DATA_TYPE.float32 });
  // This cycle's uniforms [2γ+1], gathered once (sampling graphs only).
  const cycleUniforms = graphs.sampling ? b.op('Gather', [SPS_LOOP_IO.uniforms, LOOP_BODY.iteration], { axis: 0 }) : undefined;
  const uniform = (index: number) => b.op('Gather', [cycleUniforms!, s64(index)], { axis: 0 });
  /** The sampling distribution of the draft's logits [1,V] (temperature, then top-p for the nucleus variant), [V]. */
  const distribution = (logits: string) => {
    const p = samplingProbabilities(b, logits, SPS_LOOP_IO.temperature, undefined, graphs.draftVocabSize);
    return b.op('Reshape', [graphs.sampling === 'nucleus' ? nucleus(b, p, SPS_LOOP_IO.topP) : p, i64([-1])]);
  };

  // ---- 1. Draft: γ forwards of the draft model ----
  const targetRows = rowsOf(targetCaches[0]!); // [1]: L, every committed token but the last
  const draftRows = rowsOf(draftCaches[0]!); // [1]: L', the committed tokens the draft has cached
  const pendingCount = scalarOf(b.op('Shape', [CARRIED.pending])); // n0 ≥ 1
  const draft = b.scope('draft', () => {
    const tokens: string[] = []; // [1] each
    const distributions: string[] = []; // sampling: q of each draft, [V]
    let pasts = draftCaches.map((cache) => cache.body);
    let fedRows = b.op('Add', [draftRows, b.op('Reshape', [pendingCount, i64([1])])]); // [1]: rows cached once the pending ones are fed
    for (let i = 0; i < gamma; i++) {
      let inputs: Record<string, string>;
      let lastRow: string; // [] int64: the fed row whose output gives the draft
      if (i === 0) {
        // The pending chain, padded as the host pads it.
        const chain = paddedChain(b, pendingCount, graphs.maxPending, draftRows);
        inputs = {
          [TARGET_IO.inputIds]: b.op('Unsqueeze', [b.op('Gather', [CARRIED.pending, chain.source], { axis: 0 }), i64([0])]),
          [TARGET_IO.positionIds]: b.op('Unsqueeze', [b.op('Add', [scalarOf(draftRows), chain.source]), i64([0])]),
          [TARGET_IO.attentionBias]: chain.bias,
        };
        lastRow = b.op('Sub', [pendingCount, s64(1)]);
      } else {
        // The previous draft, one row after the fedRows cached ones, seeing all of them and itself.
        inputs = {
          [TARGET_IO.inputIds]: b.op('Reshape', [tokens[i - 1]!, i64([1, 1])]),
          [TARGET_IO.positionIds]: b.op('Reshape', [fedRows, i64([1, 1])]),
          [TARGET_IO.attentionBias]: b.op('Expand', [b.constant('float32', [0], [1, 1, 1, 1]), b.op('Concat', [i64([1, 1, 1]), b.op('Add', [fedRows, i64([1])])], { axis: 0 })]),
        };
        lastRow = s64(0);
      }
      draftCaches.forEach((cache, c) => (inputs[cache.past] = pasts[c]!));
      const call = { prefix: `@draft_${i}`, inputs: { ...inputs, ...draftTables } };
      const out = draftGraph.call(b, call);
      // The next past: this one and the fed rows, less any padding rows at the end.
      pasts = draftCaches.map((cache, c) => {
        if (cache.carry.concat === undefined) {
          const fed = i === 0 ? b.op('Slice', [out[cache.newRows], i64([0]), b.op('Reshape', [pendingCount, i64([1])]), i64([1])]) : out[cache.newRows];
          return b.op('Concat', [pasts[c]!, fed], { axis: 1 });
        }
        const concatenated = draftGraph.valueName(call, cache.carry.concat);
        return i === 0 ? firstRows(concatenated, fedRows, cache.rowAxis) : concatenated;
      });
      if (i > 0) fedRows = b.op('Add', [fedRows, i64([1])]);
      if (graphs.sampling) {
        const q = distribution(draftLogitsRow(call, lastRow));
        distributions.push(q);
        tokens.push(b.op('Reshape', [drawFrom(b, q, uniform(i), graphs.draftVocabSize), i64([1])]));
      } else {
        tokens.push(b.op('Reshape', [b.op('Gather', [b.op('Reshape', [out[TARGET_IO.argmax], i64([-1])]), lastRow], { axis: 0 }), i64([1])]));
      }
    }
    // `pasts` holds the pending rows and every draft but the last: L' + n0 + γ − 1 rows.
    return { tokens: b.op('Concat', tokens, { axis: 0 }), distributions, pasts };
  });

  // ---- 2. Verify: the chain [last committed token, drafts] in bucketSize(γ + 1) rows ----
  const S = gamma + 1;
  const Sb = bucketSize(S);
  const padIndex = [...range(S), ...new Array<number>(Sb - S).fill(0)];
  const root = b.op('Slice', [CARRIED.pending, i64([-1]), i64([Number.MAX_SAFE_INTEGER]), i64([0])]); // [1]
  const chain = b.op('Concat', [root, draft.tokens], { axis: 0 }); // [γ+1]
  const chainBias = range(Sb * Sb).map((x) => (x % Sb <= (Math.floor(x / Sb) < S ? Math.floor(x / Sb) : 0) ? 0 : MASKED));
  const verifyInputs: Record<string, string> = {
    [TARGET_IO.inputIds]: b.op('Unsqueeze', [Sb === S ? chain : b.op('Gather', [chain, i64(padIndex)], { axis: 0 }), i64([0])]),
    [TARGET_IO.positionIds]: b.op('Add', [scalarOf(targetRows), b.constant('int64', padIndex, [1, Sb])]),
    [TARGET_IO.attentionBias]: b.scope('verify', () => {
      const cacheColumns = b.op('Expand', [b.constant('float32', [0], [1, 1, 1, 1]), b.op('Concat', [i64([1, 1, Sb]), targetRows], { axis: 0 })]);
      return b.op('Concat', [cacheColumns, b.constant('float32', chainBias, [1, 1, Sb, Sb])], { axis: 3 });
    }),
    ...targetTables,
  };
  for (const cache of targetCaches) verifyInputs[cache.past] = cache.body;
  const verifyCall = { prefix: '@verify', inputs: verifyInputs };
  const verified = targetGraph.call(b, verifyCall);

  // ---- 3. Accept: n = accepted drafts, `next` the token after them ----
  const accept = b.scope('accept', () => {
    /** The first index at which `rejected` ([γ] bool) is true, or γ: the accepted drafts. */
    const leadingAccepted = (rejected: string) =>
      firstMaxIndex(b, b.op('Concat', [b.op('Cast', [rejected], { to: ONNX_DATA_TYPE.float32 }), b.constant('float32', [1])], { axis: 0 }));
    if (!graphs.sampling) {
      const argmax = b.op('Slice', [b.op('Reshape', [verified[TARGET_IO.argmax], i64([-1])]), i64([0]), i64([S]), i64([0])]); // [γ+1]
      const accepted = leadingAccepted(b.op('Not', [b.op('Equal', [draft.tokens, b.op('Slice', [argmax, i64([0]), i64([gamma]), i64([0])])])]));
      return { accepted, next: b.op('Gather', [argmax, accepted], { axis: 0 }) };
    }
    const logits = b.op('Cast', [b.op('Slice', [b.op('Squeeze', [targetGraph.valueName(verifyCall, logitsBeforeArgmax(graphs.target)), i64([0])]), i64([0]), i64([S]), i64([0])])], { to: ONNX_DATA_TYPE.float32 });
    const pAll = samplingProbabilities(b, logits, SPS_LOOP_IO.temperature, undefined, graphs.vocabSize); // [γ+1, V]
    const p = graphs.sampling === 'nucleus' ? nucleus(b, pAll, SPS_LOOP_IO.topP) : pAll;
    const q = b.op('Concat', draft.distributions.map((row) => b.op('Unsqueeze', [row, i64([0])])), { axis: 0 }); // [γ, V]
    const draftsColumn = b.op('Unsqueeze', [draft.tokens, i64([1])]);
    const at = (dist: string) => b.op('Squeeze', [b.op('GatherElements', [dist, draftsColumn], { axis: 1 }), i64([1])]); // [γ]
    const tests = b.op('Slice', [cycleUniforms!, i64([gamma]), i64([2 * gamma]), i64([0])]); // [γ]
    // u < p(x)/q(x), written as the host writes it: u·q(x) < p(x).
    const pDrafts = at(b.op('Slice', [p, i64([0]), i64([gamma]), i64([0])]));
    const accepted = leadingAccepted(b.op('Not', [b.op('Less', [b.op('Mul', [tests, at(q)]), pDrafts])]));
    // At a rejection: norm(max(0, p − q)) (p itself where that has no mass); after γ acceptances p (q = 0 there).
    const pAt = b.op('Gather', [p, accepted], { axis: 0 });
    const qAt = b.op('Gather', [b.op('Concat', [q, b.op('Mul', [b.op('Slice', [p, i64([0]), i64([1]), i64([0])]), b.scalar('float32', 0)])], { axis: 0 }), accepted], { axis: 0 });
    const residual = b.op('Max', [b.op('Sub', [pAt, qAt]), b.scalar('float32', 0)]);
    const hasMass = b.op('Greater', [b.op('ReduceSum', [residual, i64([0])], { keepdims: 0 }), b.scalar('float32', 0)]);
    const next = drawFrom(b, b.op('Where', [hasMass, residual, pAt]), uniform(2 * gamma), graphs.vocabSize);
    return { accepted, next };
  });

  // The committed block: the accepted drafts, then `next`, −1 after them.
  const count = b.op('Add', [accept.accepted, s64(1)]); // [] n + 1
  const block = committedBlock(b, b.op('Concat', [draft.tokens, i64([-1])], { axis: 0 }), accept.accepted, accept.next, S);

  // ---- 4. Commit ----
  // n + 1 to the host once, as the length of a Slice it ends; every commit shape below reads it from that Slice's
  // shape (host values onnxruntime computes with on the CPU), so no other value waits for a copy from the device,
  // each of which would drain the GPU's queue.
  const countRow = b.op('Reshape', [count, i64([1])]);
  const committed = b.op('Slice', [i64(range(gamma + 1)), i64([0]), countRow]); // [n+1] (its values unused)
  const lengthOf = (sliced: string) => b.op('Shape', [sliced]); // [1], on the host
  const committedRows = lengthOf(committed); // n + 1
  const committedTarget = b.op('Add', [targetRows, committedRows]); // [1]: L + n + 1 (the chain's first rows are the last token and the accepted drafts)
  const committedTargetCaches = targetCaches.map(({ body, carry, newRows, rowAxis }): [string, string] => [
    body,
    carry.concat === undefined ? b.op('Concat', [body, firstRows(verified[newRows], committedRows, 1)], { axis: 1 }) : firstRows(targetGraph.valueName(verifyCall, carry.concat), committedTarget, rowAxis),
  ]);
  // The draft keeps its rows up to the accepted drafts: min(L' + n0 + γ − 1, L' + n0 + n) rows, min(n, γ − 1) being
  // the length of committed[1 : γ].
  const keptDrafts = lengthOf(b.op('Slice', [committed, i64([1]), i64([gamma])]));
  const draftKept = b.op('Add', [draftRows, b.op('Add', [b.op('Reshape', [pendingCount, i64([1])]), keptDrafts])]);
  const committedDraftCaches = draftCaches.map(({ body, rowAxis }, c): [string, string] => [body, firstRows(draft.pasts[c]!, draftKept, rowAxis)]);
  // Next pending: `next`, after a fully accepted cycle preceded by the last draft (which the draft never fed): the last
  // one or two of [last draft, next], two when committed[γ] exists (n = γ).
  const allAccepted = lengthOf(b.op('Slice', [committed, i64([gamma]), i64([gamma + 1])])); // [1]: 1 when n = γ, else 0
  const lastDraft = b.op('Slice', [draft.tokens, i64([-1]), i64([gamma]), i64([0])]);
  const nextPending = b.op('Slice', [b.op('Concat', [lastDraft, b.op('Reshape', [accept.next, i64([1])])], { axis: 0 }), b.op('Sub', [i64([-1]), allAccepted]), i64([2]), i64([0])]);
  const generated = b.op('Add', [CARRIED.generated, count]);
  const cond = b.op('And', [noStopIdAmong(b, block, SPS_LOOP_IO.stopIds), b.op('Less', [generated, SPS_LOOP_IO.maxTokens])]);

  addLoop(outer, b, {
    name: SPS_LOOP_GRAPH,
    maxSteps: SPS_LOOP_IO.maxSteps,
    carried,
    updated: new Map<string, string>([[CARRIED.pending, nextPending], [CARRIED.generated, generated], ...committedTargetCaches, ...committedDraftCaches]),
    cond,
    scans: [
      { value: block, name: SPS_LOOP_IO.blocks, dtype: 'int64', shape: [S] },
      { value: count, name: SPS_LOOP_IO.counts, dtype: 'int64', shape: [] },
    ],
    iterationsDim: 'iterations',
  });
  for (const cache of [...targetCaches, ...draftCaches]) cache.finish();
  outer.setMetadata('fr-spec.graph', SPS_LOOP_GRAPH);
  outer.setMetadata('fr-spec.gamma', String(gamma));
  return outer.toModel();
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
