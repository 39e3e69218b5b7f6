/**
 * EAGLE-2's dynamic draft tree, as bookkeeping over candidates (no model here, so tests can drive
 * it with made-up top-k lists):
 * - every drafted top-k entry becomes a candidate scored by its cumulative draft log-probability;
 * - each level expands only the best `k` candidates of the previous level;
 * - the tree is the root plus the best (size − 1) candidates overall.
 * Candidate indices follow EAGLE's global index (level by level, row by row, best child first), and
 * every ranking breaks ties toward the lower index. Because a child never scores above its parent
 * (log-probs are clamped to ≤ 0) and comes after it, the chosen set always contains each chosen
 * node's parent.
 */
import type { TokenTree } from './token-tree.js';

export interface Candidate {
  token: number;
  /** Sum of the draft log-probs along the path from the root. */
  score: number;
  /** Index of the parent candidate, or −1 for the root. */
  parent: number;
  /** 1 for the root's children. */
  depth: number;
}

/** One expanded node's top-k: its candidate index (−1: the root) and ids/log-probs best first. */
export interface ExpandedRow {
  parent: number;
  ids: ArrayLike<number | bigint>;
  logprobs: ArrayLike<number>;
}

export interface DraftTree {
  tree: TokenTree;
  /** Candidate index of each tree node (−1 for the root, node 0). */
  candidateOf: number[];
}

const byScoreThenIndex = (candidates: readonly Candidate[]) => (a: number, b: number) => candidates[b].score - candidates[a].score || a - b;

export class CandidatePool {
  readonly candidates: Candidate[] = [];

  /** Adds the children of each expanded row; returns the new candidates' indices. */
  addLevel(rows: readonly ExpandedRow[]): number[] {
    const added: number[] = [];
    for (const row of rows) {
      const parent = row.parent < 0 ? undefined : this.candidates[row.parent];
      for (let j = 0; j < row.ids.length; j++) {
        const logprob = Number.isNaN(row.logprobs[j]) ? -Infinity : Math.min(0, row.logprobs[j]);
        added.push(this.candidates.length);
        this.candidates.push({ token: Number(row.ids[j]), score: (parent?.score ?? 0) + logprob, parent: row.parent, depth: (parent?.depth ?? 0) + 1 });
      }
    }
    return added;
  }

  /** The best `count` of `indices` (score descending, lower index first on ties). */
  best(indices: readonly number[], count: number): number[] {
    return [...indices].sort(byScoreThenIndex(this.candidates)).slice(0, count);
  }

  /** Candidate `index` and its ancestors, excluding the root, nearest first. */
  ancestors(index: number): number[] {
    const chain: number[] = [];
    for (let c = this.candidates[index].parent; c >= 0; c = this.candidates[c].parent) chain.push(c);
    return chain;
  }

  /** The root token plus the best (size − 1) candidates, laid out in candidate order. */
  toTree(rootToken: number, size: number): DraftTree {
    const all = this.candidates.map((_, i) => i);
    const chosen = this.best(all, Math.max(0, size - 1)).sort((a, b) => a - b);
    const nodeOf = new Map<number, number>(chosen.map((c, i) => [c, i + 1]));
    const parents = [-1];
    for (const c of chosen) {
      const parent = this.candidates[c].parent;
      const node = parent < 0 ? 0 : nodeOf.get(parent);
      if (node === undefined) throw new Error(`draft tree: candidate ${c} was chosen without its parent ${parent}`);
      parents.push(node);
    }
    return { tree: { tokens: [rootToken, ...chosen.map((c) => this.candidates[c].token)], parents }, candidateOf: [-1, ...chosen] };
  }
}
