/**
 * The host's tree walks (src/engine/tree-verify.ts) as graph ops over a verified draft tree, for the
 * fused eagle loop. Both return the accepted path as the node at each depth ([depth+1], entries past
 * the path unused), its length n (root included) and the token after it.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import { ONNX_DATA_TYPE } from '../onnx/dtypes.js';
import { firstMaxIndex } from './loop-ops.js';
import { drawFrom } from './sampling-ops.js';

/** A token tree inside a graph: nodes in candidate order, the root first. */
export interface GraphTree {
  /** [T] int64. */
  tokens: string;
  /** [T] int64; the root is its own parent (0). */
  parents: string;
  /** [T] int64, 0 for the root. */
  depths: string;
  /** [T, depth+1] int64: column d holds each node's ancestor d levels up (column 0 the node itself, the root above the root). */
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
 * A tree's ancestors by repeated Gathers of the parent table, and the additive attention bias of its
 * verify (0 where a column is the row's ancestor or itself, else `masked`) by one scatter of zeros at
 * each node's ancestors. The root being its own parent, a chain that passes the root stays there, and
 * every node sees the root anyway. Gathers and a scatter: onnxruntime's CUDA reductions (ReduceSum,
 * ArgMax) and small fp32 MatMuls cost far more host time per node.
 *
 * @param parents [T] int64, the root its own parent
 */
export function treeAncestry(b: GraphBuilder, parents: string, size: number, depth: number, masked: number): { ancestors: string; bias: string } {
  const columns = [b.constant('int64', range(size), [size, 1])];
  for (let d = 1; d <= depth; d++) columns.push(b.op('Gather', [parents, columns[d - 1]!], { axis: 0 }));
  const ancestors = columns.length === 1 ? columns[0]! : b.op('Concat', columns, { axis: 1 });
  const hidden = b.constant('float32', new Array<number>(size * size).fill(masked), [size, size]);
  const bias = b.op('ScatterElements', [hidden, ancestors, b.constant('float32', new Array<number>(size * (depth + 1)).fill(0), [size, depth + 1])], { axis: 1 });
  return { ancestors, bias };
}

/**
 * greedyWalk: a node is accepted when every node on its path (root excluded) is its parent's argmax;
 * siblings are distinct, so the accepted nodes form one path. Nodes are in candidate order, whose depth
 * never decreases, so the path's deepest node is the accepted node of the highest index; it gives the bonus.
 * Its reductions are TopKs (K = 1), cheaper per node on CUDA than onnxruntime's ReduceSum and ArgMax.
 */
export function greedyTreeWalk(b: GraphBuilder, tree: GraphTree, argmax: string): GraphWalk {
  const i64 = (values: number[]) => b.constant('int64', values);
  const wantedHere = b.op('Gather', [argmax, tree.parents], { axis: 0 });
  const isRoot = b.constant('bool', range(tree.size).map((i) => i === 0));
  const misses = b.op('Cast', [b.op('Not', [b.op('Or', [b.op('Equal', [tree.tokens, wantedHere]), isRoot])])], { to: ONNX_DATA_TYPE.float32 });
  // A miss anywhere on a node's path (the root, its own ancestor above itself, never misses).
  const [worstOnPath] = b.node('TopK', [b.op('Gather', [misses, tree.ancestors], { axis: 0 }), i64([1])], { outputs: 2, attributes: { axis: 1, largest: 1, sorted: 1 } }); // [T,1]
  const key = b.op('Where', [b.op('Less', [worstOnPath, b.scalar('float32', 0.5)]), b.constant('float32', range(tree.size), [tree.size, 1]), b.scalar('float32', -1)]);
  const deepest = firstMaxIndex(b, key); // [] (key [T,1]: one TopK along axis 0)
  const deepestDepth = b.op('Gather', [tree.depths, deepest], { axis: 0 });
  const count = b.op('Add', [deepestDepth, b.scalar('int64', 1)]);
  // The node at depth l is the deepest node's ancestor deepestDepth − l levels up. Past the path that is
  // negative: Gather reads it from the end of the ancestor row, more than depth levels up, the root.
  const levelsUp = b.op('Sub', [deepestDepth, i64(range(tree.depth + 1))]);
  const pathNodes = b.op('Gather', [b.op('Gather', [tree.ancestors, deepest], { axis: 0 }), levelsUp], { axis: 0 });
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
  // Lower node index first; the root (its own parent) is never a valid child.
  const nodeKey = b.constant('float32', range(tree.size).map((i) => (i === 0 ? -1e9 : -i)));
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
    // Whether any passes, and the first one: one TopK (K = 1; equal values lower index first).
    const [bestPass, bestPassAt] = b.node('TopK', [passesF, i64([1])], { outputs: 2, attributes: { axis: 0, largest: 1, sorted: 1 } });
    const accepted = b.op('Greater', [b.op('Reshape', [bestPass, i64([])]), b.scalar('float32', 0.5)]);
    const firstPass = b.op('Reshape', [bestPassAt, i64([])]);
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
