/**
 * A batch of tokens fed to a decoder in one forward: a forest laid out parents first. Node i's
 * parent is parents[i] < i, or −1 when it hangs directly off the cached past. A prompt chunk is a
 * chain; a draft tree is a root with its drafts; Ouroboros feeds a chain with a trie below it.
 */
export interface TokenTree {
  tokens: readonly number[];
  parents: readonly number[];
}

export function checkTree(tree: TokenTree): void {
  if (tree.tokens.length !== tree.parents.length) throw new Error(`tree has ${tree.tokens.length} tokens but ${tree.parents.length} parents`);
  tree.parents.forEach((parent, i) => {
    if (!Number.isInteger(parent) || parent < -1 || parent >= i) throw new Error(`tree node ${i} has parent ${parent}; parents must come first`);
  });
}

/** A chain of tokens, each the parent of the next. */
export function chainTree(tokens: readonly number[]): TokenTree {
  return { tokens, parents: tokens.map((_, i) => i - 1) };
}

/** Depth of each node: 0 for nodes hanging off the past. */
export function depthsOf(tree: TokenTree): number[] {
  const depths: number[] = [];
  tree.parents.forEach((parent, i) => (depths[i] = parent < 0 ? 0 : depths[parent] + 1));
  return depths;
}

/** Children of each node in increasing index order. */
export function childrenOf(tree: TokenTree): number[][] {
  const children: number[][] = tree.tokens.map(() => []);
  tree.parents.forEach((parent, i) => {
    if (parent >= 0) children[parent].push(i);
  });
  return children;
}

/** RoPE positions: the past length plus the depth (a node's final position if it is accepted). */
export function positionsOf(tree: TokenTree, pastLength: number): number[] {
  return depthsOf(tree).map((depth) => pastLength + depth);
}

/** Node and its ancestors, root first. */
export function pathTo(tree: TokenTree, node: number): number[] {
  const path: number[] = [];
  for (let n = node; n >= 0; n = tree.parents[n]) path.push(n);
  return path.reverse();
}

/** Appends `sub` below node `under` of `tree` (−1: at the top level). */
export function graftTree(tree: TokenTree, under: number, sub: TokenTree): TokenTree {
  const offset = tree.tokens.length;
  return {
    tokens: [...tree.tokens, ...sub.tokens],
    parents: [...tree.parents, ...sub.parents.map((p) => (p < 0 ? under : p + offset))],
  };
}
