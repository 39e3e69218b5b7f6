/**
 * Ouroboros' phrase pool: for a key token, the most recent phrases (fixed-length token runs) seen to
 * follow it. Verification feeds it with the target's own outputs, the draft model uses the phrases
 * to produce several tokens per forward, and the target verifies the most recent phrases as
 * candidate continuations after the draft.
 */
import type { TokenTree } from './token-tree.js';

export class PhrasePool {
  private readonly phrases = new Map<number, number[][]>();

  constructor(
    /** Tokens per phrase (Ouroboros' N − 1). */
    readonly phraseLength: number,
    /** Phrases kept per key (Ouroboros' G); the oldest goes first. */
    readonly capacity: number,
  ) {
    if (!(phraseLength >= 1 && capacity >= 1)) throw new Error('a phrase pool needs phraseLength ≥ 1 and capacity ≥ 1');
  }

  /** Adds a phrase as the key's most recent (moving it there if it is already present). */
  insert(key: number, phrase: readonly number[]): void {
    if (phrase.length !== this.phraseLength) return;
    const list = this.phrases.get(key) ?? [];
    const existing = list.findIndex((p) => p.every((token, i) => token === phrase[i]));
    if (existing >= 0) list.splice(existing, 1);
    list.push([...phrase]);
    if (list.length > this.capacity) list.shift();
    this.phrases.set(key, list);
  }

  /** Adds every full window of `tokens`: key tokens[i], phrase tokens[i+1 .. i+phraseLength]. */
  insertWindows(tokens: readonly number[]): void {
    for (let i = 0; i + this.phraseLength < tokens.length; i++) this.insert(tokens[i], tokens.slice(i + 1, i + 1 + this.phraseLength));
  }

  /** The key's phrases, oldest first. */
  all(key: number): readonly (readonly number[])[] {
    return this.phrases.get(key) ?? [];
  }

  /** Up to `count` of the key's phrases, most recent first. */
  recent(key: number, count: number): number[][] {
    return [...(this.phrases.get(key) ?? [])].reverse().slice(0, count);
  }

  get keys(): number {
    return this.phrases.size;
  }
}

/** Phrases merged into a trie (shared prefixes become one node), as a forest parents first. */
export function phraseTrie(phrases: readonly (readonly number[])[]): TokenTree {
  const tokens: number[] = [];
  const parents: number[] = [];
  const childByToken = new Map<string, number>();
  for (const phrase of phrases) {
    let parent = -1;
    for (const token of phrase) {
      const key = `${parent}:${token}`;
      let node = childByToken.get(key);
      if (node === undefined) {
        node = tokens.length;
        tokens.push(token);
        parents.push(parent);
        childByToken.set(key, node);
      }
      parent = node;
    }
  }
  return { tokens, parents };
}
