/** Plain autoregressive decoding: one target forward per token. The reference for every other method. */
import { feedChain } from '../decoder.js';
import { chainTree } from '../token-tree.js';
import type { MethodContext } from './context.js';

/** `onPromptFed(rows)`: called once the prompt is in the target's cache (`rows` rows), before the first decode step. */
export async function runVanilla({ transcript, target, targetChoice }: MethodContext, onPromptFed?: (rows: number) => void): Promise<void> {
  const prompt = await feedChain(target, transcript.tokens);
  onPromptFed?.(target.length);
  transcript.commit([await targetChoice.choose(target, prompt.last, prompt.last.nodes - 1)], false);
  while (!transcript.done) {
    const out = await target.forward({ tree: chainTree([transcript.last]) });
    target.keep(out, [0]);
    transcript.commit([await targetChoice.choose(target, out, 0)]);
  }
}
