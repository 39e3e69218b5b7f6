/**
 * Speculative sampling with a plain draft model (SpS): the draft proposes γ tokens one forward at a
 * time; the target checks them in one forward. Greedy: accept while the draft equals the target's
 * argmax. Sampling: Leviathan/Chen rejection with the draft's own distributions q.
 *
 * The target caches every committed token but the last; the draft caches a prefix of the
 * committed tokens (it catches up at the start of each cycle) plus the drafts it has fed.
 */
import { speculativeSamplingChain } from '../chain-verify.js';
import { feedChain, type KvDecoder } from '../decoder.js';
import { sampleFrom, type Distribution } from '../sampling.js';
import { chainTree } from '../token-tree.js';
import { greedyWalk } from '../tree-verify.js';
import { argmaxOf, range, type MethodContext, type TokenChooser } from './context.js';

export async function runSps(ctx: MethodContext, draft: KvDecoder, draftChoice: TokenChooser, gamma: number): Promise<void> {
  const { transcript, target, targetChoice, random } = ctx;
  const prompt = await feedChain(target, transcript.tokens);
  transcript.commit([await targetChoice.choose(target, prompt.last, prompt.last.nodes - 1)], false);

  while (!transcript.done) {
    const committedBefore = transcript.tokens.length;
    const drafts: number[] = [];
    const draftDistributions: Distribution[] = [];
    let pending = transcript.tokens.slice(draft.length);
    for (let i = 0; i < gamma; i++) {
      const { last } = await feedChain(draft, pending);
      const node = last.nodes - 1;
      let token: number;
      if (draftChoice.greedy) {
        token = Number(last.argmax![node]);
      } else {
        const q = await draftChoice.distribution(draft.state(last, node));
        token = sampleFrom(q, random.uniform());
        draftDistributions.push(q);
      }
      drafts.push(token);
      pending = [token];
    }

    const tree = chainTree([transcript.last, ...drafts]);
    const out = await target.forward({ tree });
    let accepted: number;
    let next: number;
    if (targetChoice.greedy) {
      const walk = greedyWalk(tree, 0, argmaxOf(out));
      [accepted, next] = [walk.path.length - 1, walk.next];
    } else {
      ({ accepted, next } = await speculativeSamplingChain(drafts, draftDistributions, targetChoice.distributionsOf(target, out), random));
    }
    transcript.commit([...drafts.slice(0, accepted), next]);
    if (transcript.done) break;
    target.keep(out, range(0, accepted + 1));
    draft.truncate(Math.min(draft.length, committedBefore + accepted));
  }
}
