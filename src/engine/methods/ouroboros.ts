/**
 * Ouroboros (greedy drafts from a draft model, lengthened with phrases).
 * - Drafting: each draft-model forward feeds the uncached tokens plus, as a trie hanging off the
 *   last one, the pool's phrases for that token; the draft's argmax accepts a phrase prefix, so one
 *   forward can draft several tokens. Repeats until γ drafts.
 * - Lengthening: the target verifies [root, γ drafts] with the pool's most recent phrases for the
 *   last draft as a trie below it, in one forward; the longest accepted path wins.
 * - Phrases from verification: the target's outputs after a rejected draft, its continuations of
 *   the phrases it checked, and the committed text go back into the pool.
 * Greedy, or sampling with the maintainers' recipe (greedy drafts; accept a draft only when it
 * equals the target's sampled token), which is lossless.
 *
 * Differences from the reference: the draft model drafts autoregressively with phrase branches
 * instead of running Lookahead decoding's Jacobi window, so phrases come only from verification and
 * the committed text.
 */
import { feedChain, type KvDecoder } from '../decoder.js';
import { phraseTrie, type PhrasePool } from '../phrase-pool.js';
import { chainTree, childrenOf, graftTree, pathTo, type TokenTree } from '../token-tree.js';
import { greedyWalk, matchSamplingWalk, type WalkResult } from '../tree-verify.js';
import { argmaxOf, range, type MethodContext } from './context.js';

export interface OuroborosSettings {
  /** Drafted tokens per cycle before lengthening. */
  gamma: number;
  /** Phrases tried after the draft (Ouroboros' top-k). */
  suffixes: number;
}

export async function runOuroboros(ctx: MethodContext, draft: KvDecoder, pool: PhrasePool, settings: OuroborosSettings): Promise<void> {
  const { transcript, target, targetChoice, random } = ctx;
  const prompt = await feedChain(target, transcript.tokens);
  transcript.commit([await targetChoice.choose(target, prompt.last, prompt.last.nodes - 1)], false);

  while (!transcript.done) {
    const committedBefore = transcript.tokens.length;
    const drafts = await draftWithPhrases(draft, pool, transcript.tokens, settings.gamma);
    const lastDraft = drafts[drafts.length - 1];
    const chain = chainTree([transcript.last, ...drafts]);
    const tree = graftTree(chain, drafts.length, phraseTrie(pool.recent(lastDraft, settings.suffixes)));
    const out = await target.forward({ tree });
    const walk = targetChoice.greedy ? greedyWalk(tree, 0, argmaxOf(out)) : await matchSamplingWalk(tree, 0, targetChoice.distributionsOf(target, out), random);
    const committed = [...walk.path.slice(1).map((node) => tree.tokens[node]), walk.next];
    learnFromVerification(pool, tree, argmaxOf(out), drafts.length, walk);
    transcript.commit(committed);
    if (transcript.done) break;
    pool.insertWindows(transcript.tokens.slice(-(committed.length + pool.phraseLength)));
    target.keep(out, walk.path);
    const acceptedDrafts = walk.path.filter((node) => node >= 1 && node <= drafts.length).length;
    draft.truncate(Math.min(draft.length, committedBefore + acceptedDrafts));
  }
}

/** γ greedy drafts after `committed`; the draft's cache ends up holding a prefix of committed + drafts. */
async function draftWithPhrases(draft: KvDecoder, pool: PhrasePool, committed: readonly number[], gamma: number): Promise<number[]> {
  const drafts: number[] = [];
  while (drafts.length < gamma) {
    const pending = [...committed, ...drafts].slice(draft.length);
    if (pending.length > 1) await feedChain(draft, pending.slice(0, -1));
    const last = pending[pending.length - 1];
    const tree = graftTree(chainTree([last]), 0, phraseTrie(pool.all(last)));
    const out = await draft.forward({ tree });
    const walk = greedyWalk(tree, 0, argmaxOf(out));
    draft.keep(out, walk.path);
    drafts.push(...walk.path.slice(1).map((node) => tree.tokens[node]), walk.next);
  }
  drafts.length = gamma;
  draft.truncate(Math.min(draft.length, committed.length + gamma));
  return drafts;
}

/**
 * Phrases from the target's argmax outputs (also in sampling runs: the pool only shapes drafts):
 * after a rejection inside the draft, the target's predictions along the rest of the draft; when the
 * whole draft passed, the target's own continuation of every phrase it checked.
 */
export function learnFromVerification(pool: PhrasePool, tree: TokenTree, argmax: (node: number) => number, draftCount: number, walk: WalkResult): void {
  const lastChainNode = draftCount;
  const acceptedInChain = walk.path.filter((node) => node <= lastChainNode).length - 1;
  if (acceptedInChain < draftCount) {
    pool.insertWindows(range(acceptedInChain, lastChainNode + 1).map(argmax));
    return;
  }
  const children = childrenOf(tree);
  for (let leaf = lastChainNode + 1; leaf < tree.tokens.length; leaf++) {
    if (children[leaf].length > 0) continue;
    // The target's predictions after the last draft and after each phrase token but the last.
    const checked = pathTo(tree, tree.parents[leaf]).filter((node) => node >= lastChainNode);
    pool.insert(tree.tokens[lastChainNode], checked.map(argmax));
  }
}
