/**
 * The host's tree walks (src/engine/tree-verify.ts) as graph ops over a verified draft tree, for the
 * fused eagle loop. Both return the accepted path as the node at each depth ([depth+1], entries past
 * the path unused), its length n (root included) and the token after it.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import { drawFrom } from './sampling-ops.js';

/** A token tree inside a graph: nodes in candidate order, the root first. */
export interface GraphTree {
  /** [T] int64. */
  tokens: string;
  /** [T] int64, −1 for the root. */
  parents: string;
  /** [T] int64, 0 for the root. */
  depths: string;
  /** [depth+1, T] int64: row d holds each node's ancestor d levels up (row 0 the node itself, T above the root). */
  ancestors: string;
  /** T. */
  size: number;
  /** Deepest node's depth. */
  depth: number;
}

export interface GraphWalk {
  /** [depth+1] int64: the accepted node at each depth. */
  pathNodes: string;
  /** [] int64: nodes on the path, root included (= tokens committed). */
  count: string;
  /** [] int64: the target's token after the path. */
  next: string;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * A tree's ancestors by repeated Gathers of the parent table, and its lineage (ancestor-or-self) matrix
 * from them: small Gathers, one Equal and one ReduceSum, where powers of the parent matrix would take a
 * chain of small fp32 MatMuls (slow per node on CUDA).
 *
 * @param parents [T] int64, −1 for the root
 */
export function treeLineage(b: GraphBuilder, parents: string, size: number, depth: number): { ancestors: string; lineage: string } {
  const above = b.scalar('int64', size);
  // Parent of each node, the root's and the sentinel's being the sentinel T.
  const parentOrAbove = b.op('Concat', [b.op('Where', [b.op('Less', [parents, b.scalar('int64', 0)]), above, parents]), b.constant('int64', [size])], { axis: 0 });
  const rows = [b.constant('int64', range(size), [1, size])];
  for (let d = 1; d <= depth; d++) rows.push(b.op('Gather', [parentOrAbove, rows[d - 1]!], { axis: 0 }));
  const ancestors = rows.length === 1 ? rows[0]! : b.op('Concat', rows, { axis: 0 });
  const isAncestor = b.op('Equal', [b.op('Unsqueeze', [ancestors, b.constant('int64', [2])]), b.constant('int64', range(size), [1, 1, size])]); // [depth+1,T,T]
  const lineage = b.op('ReduceSum', [b.op('Cast', [isAncestor], { to: ONNX_DATA_TYPE.float32 }), b.constant('int64', [0])], { keepdims: 0 });
  return { ancestors, lineage };
}

/**
 * greedyWalk: a node is accepted when every node on its path (root excluded) is its parent's argmax;
 * siblings are distinct, so the accepted nodes form one path, and its deepest node gives the bonus.
 */
export function greedyTreeWalk(b: GraphBuilder, tree: GraphTree, argmax: string): GraphWalk {
  const i64 = (values: number[]) => b.constant('int64', values);
  const wantedHere = b.op('Gather', [argmax, b.op('Max', [tree.parents, b.scalar('int64', 0)])], { axis: 0 });
  const isRoot = b.constant('bool', range(tree.size).map((i) => i === 0));
  const matches = b.op('Or', [b.op('Equal', [tree.tokens, wantedHere]), isRoot]);
  // Misses on each node's path: its ancestors' misses summed (the sentinel above the root misses nothing).
  const missesOrAbove = b.op('Concat', [b.op('Cast', [b.op('Not', [matches])], { to: ONNX_DATA_TYPE.float32 }), b.constant('float32', [0])], { axis: 0 });
  const misses = b.op('ReduceSum', [b.op('Gather', [missesOrAbove, tree.ancestors], { axis: 0 }), i64([0])], { keepdims: 0 });
  const accepted = b.op('Less', [misses, b.scalar('float32', 0.5)]);
  const depthF = b.op('Cast', [tree.depths], { to: ONNX_DATA_TYPE.float32 });
  const deepest = b.op('ArgMax', [b.op('Where', [accepted, depthF, b.scalar('float32', -1)])], { axis: 0, keepdims: 0 });
  const deepestDepth = b.op('Gather', [tree.depths, deepest], { axis: 0 });
  const count = b.op('Add', [deepestDepth, b.scalar('int64', 1)]);
  // The node at depth l is the deepest node's ancestor deepestDepth − l levels up; the root past the path.
  const levelsUp = b.op('Sub', [deepestDepth, i64(range(tree.depth + 1))]);
  const lineOfDeepest = b.op('Gather', [tree.ancestors, deepest], { axis: 1 }); // [depth+1]
  const onPath = b.op('Gather', [lineOfDeepest, b.op('Max', [levelsUp, b.scalar('int64', 0)])], { axis: 0 });
  const pathNodes = b.op('Where', [b.op('Less', [levelsUp, b.scalar('int64', 0)]), b.scalar('int64', 0), onPath]);
  return { pathNodes, count, next: b.op('Gather', [argmax, deepest], { axis: 0 }) };
}

/**
 * sequentialSamplingWalk (EAGLE-2's target-only multi-draft rejection, q = 1), unrolled over the
 * depth + 1 levels: at the current node try its children in node order, accepting child x when
 * u < p(x) / remaining (p renormalized after the rejected siblings, as removeAndRenormalize does); when
 * none is accepted, or at a leaf, draw the next token from p without the rejected tokens.
 *
 * @param probs [T,V] the target's sampling distribution at every node
 * @param uniforms [depth+1, min(topK,T)+1]: per level, one per child tried and one for the draw
 * @param topK most children a node has
 * @param rowDistribution applied to the current node's row of `probs` before it is used (e.g. nucleus
 *   truncation, which then sorts D + 1 rows instead of all T)
 * @param vocabSize V, for the draws' two-level reductions (drawFrom)
 */
export function samplingTreeWalk(b: GraphBuilder, tree: GraphTree, probs: string, uniforms: string, topK: number, rowDistribution: (row: string) => string = (row) => row, vocabSize?: number): GraphWalk {
  const i64 = (values: number[]) => b.constant('int64', values);
  const s64 = (value: number) => b.scalar('int64', value);
  const at = (vector: string, index: number) => b.op('Gather', [vector, s64(index)], { axis: 0 });
  const vocab = b.op('Squeeze', [b.op('Shape', [probs], { start: 1, end: 2 }), i64([0])]);
  const kk = Math.min(topK, tree.size);
  const nodeKey = b.constant('float32', range(tree.size).map((i) => -i));
  const childOrder = b.constant('int64', range(kk));
  let current = s64(0);
  let done = b.constant('bool', [false], []);
  let count = s64(tree.depth + 1);
  let next = s64(-1);
  const pathNodes: string[] = [];
  for (let level = 0; level <= tree.depth; level++) {
    pathNodes.push(current);
    const p = rowDistribution(b.op('Gather', [probs, current], { axis: 0 })); // [V]
    const levelUniforms = b.op('Gather', [uniforms, s64(level)], { axis: 0 });
    // Children of the current node, lowest node index first (the host tries them in that order).
    const isChild = b.op('Equal', [tree.parents, current]);
    const [keys, children] = b.node('TopK', [b.op('Where', [isChild, nodeKey, b.scalar('float32', -1e9)]), i64([kk])], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
    const valid = b.op('Greater', [keys, b.scalar('float32', -1e8)]);
    const childTokens = b.op('Gather', [tree.tokens, children], { axis: 0 });
    const childProbs = b.op('Where', [valid, b.op('Gather', [p, childTokens], { axis: 0 }), b.scalar('float32', 0)]);
    // Child j is tried only when every valid child before it was rejected, so the mass left when it is
    // tried is 1 minus the mass of all valid children before it: the sequential test in one pass.
    const remaining = b.op('Sub', [b.scalar('float32', 1), b.op('CumSum', [childProbs, s64(0)], { exclusive: 1 })]);
    const childUniforms = b.op('Slice', [levelUniforms, i64([0]), i64([kk]), i64([0])]);
    const passes = b.op('And', [valid, b.op('Less', [b.op('Mul', [childUniforms, remaining]), childProbs])]);
    const passesF = b.op('Cast', [passes], { to: ONNX_DATA_TYPE.float32 });
    const accepted = b.op('Greater', [b.op('ReduceMax', [passesF, i64([0])], { keepdims: 0 }), b.scalar('float32', 0.5)]);
    const firstPass = b.op('ArgMax', [passesF], { axis: 0, keepdims: 0 }); // the first one: select_last_index 0
    const acceptedNode = b.op('Gather', [children, firstPass], { axis: 0 });
    // Rejected: the valid children before the accepted one, or every valid child when none passes.
    const triedBefore = b.op('Or', [b.op('Less', [childOrder, firstPass]), b.op('Not', [accepted])]);
    // The rejected children's tokens marked in a [V+1] vector (the others write to the spare last entry), so the
    // draw leaves them out: a scatter of k ones instead of comparing k rows with the whole vocabulary.
    const rejectedIds = b.op('Where', [b.op('And', [valid, triedBefore]), childTokens, vocab]);
    const unmarked = b.op('Concat', [b.op('Mul', [p, b.scalar('float32', 0)]), b.constant('float32', [0])], { axis: 0 });
    const marked = b.op('ScatterElements', [unmarked, rejectedIds, b.op('Expand', [b.scalar('float32', 1), b.op('Shape', [rejectedIds])])], { axis: 0 });
    const removed = b.op('Slice', [marked, i64([0]), b.op('Reshape', [vocab, i64([1])]), i64([0])]);
    const left = b.op('Where', [b.op('Greater', [removed, b.scalar('float32', 0.5)]), b.scalar('float32', 0), p]);
    const drawn = drawFrom(b, left, at(levelUniforms, kk), vocabSize);
    const endsHere = b.op('And', [b.op('Not', [done]), b.op('Not', [accepted])]);
    next = b.op('Where', [endsHere, drawn, next]);
    count = b.op('Where', [endsHere, s64(level + 1), count]);
    current = b.op('Where', [b.op('And', [b.op('Not', [done]), accepted]), acceptedNode, current]);
    done = b.op('Or', [done, b.op('Not', [accepted])]);
  }
  return { pathNodes: b.op('Concat', pathNodes.map((n) => b.op('Unsqueeze', [n, i64([0])])), { axis: 0 }), count, next };
}
