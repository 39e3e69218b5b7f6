/**
 * Verification of a token tree against the target's outputs at every node (a node's output is the
 * distribution of the token that follows it). Each walk starts at a node already known to be
 * right and returns the accepted path plus one more token from the target (the bonus, or the
 * correction where the drafts stopped matching), so a walk always commits path.length tokens.
 */
import type { SeededRandom } from './random.js';
import { probabilityOf, removeAndRenormalize, sampleFrom, type Distribution } from './sampling.js';
import { childrenOf, type TokenTree } from './token-tree.js';

export interface WalkResult {
  /** Accepted nodes, starting with the start node. */
  path: number[];
  /** The target's token after the last accepted node. */
  next: number;
}

export type DistributionAt = (node: number) => Distribution | Promise<Distribution>;

/** Greedy: follow the child whose token is the target's argmax (siblings are distinct). */
export function greedyWalk(tree: TokenTree, start: number, argmaxAt: (node: number) => number): WalkResult {
  const children = childrenOf(tree);
  const path = [start];
  let node = start;
  for (;;) {
    const wanted = argmaxAt(node);
    const child = children[node].find((c) => tree.tokens[c] === wanted);
    if (child === undefined) return { path, next: wanted };
    node = child;
    path.push(child);
  }
}

/**
 * EAGLE-2 / SGLang "target-only" multi-draft rejection with q = 1: at each node try the children in
 * order, accept child x with probability p(x), else zero p(x) and renormalize; when every child
 * fails, sample from what is left; at a leaf, sample from p. Siblings drawn this way are a draw
 * from p without replacement, so the committed tokens are distributed exactly as the target's.
 */
export async function sequentialSamplingWalk(tree: TokenTree, start: number, distributionAt: DistributionAt, random: SeededRandom): Promise<WalkResult> {
  const children = childrenOf(tree);
  const path = [start];
  let node = start;
  for (;;) {
    const kids = children[node];
    const p = Float64Array.from(await distributionAt(node));
    if (kids.length === 0) return { path, next: sampleFrom(p, random.uniform()) };
    let accepted: number | undefined;
    for (const child of kids) {
      const token = tree.tokens[child];
      if (random.uniform() < probabilityOf(p, token)) {
        accepted = child;
        break;
      }
      removeAndRenormalize(p, token);
    }
    if (accepted === undefined) return { path, next: sampleFrom(p, random.uniform()) };
    node = accepted;
    path.push(accepted);
  }
}

/**
 * Ouroboros' recipe for sampling with greedy drafts: sample the target's token at each node and
 * follow the child that drafted it; stop (committing the sample) where no child did.
 */
export async function matchSamplingWalk(tree: TokenTree, start: number, distributionAt: DistributionAt, random: SeededRandom): Promise<WalkResult> {
  const children = childrenOf(tree);
  const path = [start];
  let node = start;
  for (;;) {
    const sampled = sampleFrom(await distributionAt(node), random.uniform());
    const child = children[node].find((c) => tree.tokens[c] === sampled);
    if (child === undefined) return { path, next: sampled };
    node = child;
    path.push(child);
  }
}
