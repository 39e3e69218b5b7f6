/**
 * EAGLE-2 (and FR-Spec, which is EAGLE-2 with a draft head over a frequent-token subset).
 *
 * Invariants between cycles: the target and the EAGLE head cache the same L tokens; the last
 * committed token (the root) is in neither; `rootOut` is the head's output for the pair
 * (feature of token L−1, root), from which the root's children are drafted. A cycle drafts a tree
 * (scratch rows in the head's cache, dropped afterwards), verifies it in one target forward,
 * keeps the accepted path's target rows, and re-encodes the committed tokens in the head with the
 * target's own features.
 */
import type { FloatData } from '../../model/float-data.js';
import type { HeadResult } from '../../model/graph-sessions.js';
import { feedChain, type KvDecoder } from '../decoder.js';
import { stackRows } from '../float-rows.js';
import { CandidatePool, type DraftTree } from '../draft-tree.js';
import type { RunMeter } from '../meter.js';
import { greedyWalk, sequentialSamplingWalk } from '../tree-verify.js';
import { argmaxOf, range, type MethodContext } from './context.js';

export interface TreeShape {
  /** Most drafted tokens on one path (EAGLE's depth + 1). */
  depth: number;
  /** Children kept per expanded node, and nodes expanded per level. */
  topK: number;
  /** Tokens verified per cycle, root included. */
  tokens: number;
}

/** A draft LM head: top-k full-vocabulary ids and log-probs per row (the full head, or an FR-Spec subset head). */
export interface TopKHead {
  readonly vocabSize: number;
  run(hidden: FloatData, k: number): Promise<HeadResult>;
}

export async function runEagle(ctx: MethodContext, eagle: KvDecoder, head: TopKHead, shape: TreeShape): Promise<void> {
  const { transcript, target, targetChoice, meter } = ctx;
  const prompt = [...transcript.tokens];
  const prefill = await feedChain(target, prompt, { keepStates: true });
  const first = await targetChoice.choose(target, prefill.last, prefill.last.nodes - 1);
  transcript.commit([first], false);
  if (transcript.done) return;
  // The head pairs the feature of token t with token t+1.
  let rootOut = await encodeCommitted(eagle, [...prompt.slice(1), first], prefill.states!);

  while (!transcript.done) {
    const { tree } = await draftTree(eagle, head, meter, rootOut, transcript.last, shape);
    const out = await target.forward({ tree });
    const walk = targetChoice.greedy
      ? greedyWalk(tree, 0, argmaxOf(out))
      : await sequentialSamplingWalk(tree, 0, targetChoice.distributionsOf(target, out), ctx.random);
    const committed = [...walk.path.slice(1).map((node) => tree.tokens[node]), walk.next];
    transcript.commit(committed);
    if (transcript.done) break;
    target.keep(out, walk.path);
    rootOut = await encodeCommitted(eagle, committed, target.gatherStates(out, walk.path));
  }
}

/** Runs the head over committed tokens with their target features; returns the last row's `out`. */
export async function encodeCommitted(eagle: KvDecoder, tokens: readonly number[], features: FloatData): Promise<FloatData> {
  const { last } = await feedChain(eagle, tokens, { feature: features });
  return eagle.state(last, last.nodes - 1);
}

async function measuredTopK(head: TopKHead, meter: RunMeter, hidden: FloatData, k: number): Promise<HeadResult> {
  return meter.measure('head', 'draft', hidden.byteLength + 8, () => head.run(hidden, k), (r) => r.ids.byteLength + r.logprobs.byteLength);
}

function rowsOf(result: HeadResult, row: number, k: number) {
  return { ids: result.ids.subarray(row * k, (row + 1) * k), logprobs: result.logprobs.subarray(row * k, (row + 1) * k) };
}

/**
 * EAGLE-2's expansion: the root's top-k, then (depth − 1) levels each feeding the best k candidates
 * of the last level through the head (all at position L + level, each seeing the stable cache, its
 * ancestors' scratch rows and itself), then the rerank into `shape.tokens` nodes.
 */
export async function draftTree(eagle: KvDecoder, head: TopKHead, meter: RunMeter, rootOut: FloatData, rootToken: number, shape: TreeShape): Promise<DraftTree> {
  const k = Math.min(shape.topK, head.vocabSize);
  const stable = eagle.length;
  const pool = new CandidatePool();
  let frontier = pool.addLevel([{ parent: -1, ...rowsOf(await measuredTopK(head, meter, rootOut, k), 0, k) }]);
  const scratchRow = new Map<number, number>();
  const outOf = new Map<number, FloatData>();

  for (let level = 0; level < shape.depth - 1 && frontier.length > 0; level++) {
    const features = frontier.map((c) => {
      const parent = pool.candidates[c].parent;
      return parent < 0 ? rootOut : outOf.get(parent)!;
    });
    const feature = stackRows(features, eagle.dtype, eagle.hiddenSize);
    const out = await eagle.forward({
      tree: { tokens: frontier.map((c) => pool.candidates[c].token), parents: frontier.map(() => -1) },
      positions: frontier.map(() => stable + level),
      sharedPast: stable,
      extraPast: frontier.map((c) => pool.ancestors(c).map((a) => scratchRow.get(a)!)),
      feature,
    });
    const base = eagle.length;
    eagle.keep(out, range(0, frontier.length));
    frontier.forEach((c, j) => {
      scratchRow.set(c, base + j);
      outOf.set(c, eagle.state(out, j));
    });
    const top = await measuredTopK(head, meter, out.states, k);
    const children = pool.addLevel(frontier.map((c, j) => ({ parent: c, ...rowsOf(top, j, k) })));
    frontier = pool.best(children, k);
  }
  eagle.truncate(stable);
  return pool.toTree(rootToken, shape.tokens);
}

