/** Plain autoregressive decoding: one target forward per token. The reference for every other method. */
import { feedChain } from '../decoder.js';
import { chainTree } from '../token-tree.js';
import type { MethodContext } from './context.js';

export async function runVanilla({ transcript, target, targetChoice }: MethodContext): Promise<void> {
  const prompt = await feedChain(target, transcript.tokens);
  transcript.commit([await targetChoice.choose(target, prompt.last, prompt.last.nodes - 1)], false);
  while (!transcript.done) {
    const out = await target.forward({ tree: chainTree([transcript.last]) });
    target.keep(out, [0]);
    transcript.commit([await targetChoice.choose(target, out, 0)]);
  }
}
