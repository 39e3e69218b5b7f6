/**
 * ArgMax and TopK over the vocabulary in two levels, for the fused loops' inlined graphs.
 *
 * onnxruntime's CUDA kernels reduce a long last axis slowly: on an H100, ArgMax over 128,256 logits takes
 * 1.7 ms for one row and 6.9 ms for 64 (a tree verify), TopK(k = 10) over 10 rows 0.5 ms
 * (docs/results/2026-12-06-h100-llama3-8b/). Split into blocks of `width` ids, the same selections take a
 * TopK within each block and a TopK over the blocks' winners: 0.01–0.2 ms. The result is exactly the
 * one-level result, ties included: TopK orders equal values lower index first, every block's candidates
 * precede the next block's, so the lowest index among equal maxima wins, as ArgMax's (select_last_index 0)
 * and TopK's own tie rule require. The tokens therefore do not change.
 */
import { GraphBuilder } from '../onnx/builder.js';
import { intAttributeOf, producersOf } from '../onnx/graph-queries.js';
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { logitsBeforeArgmax } from './loop-ops.js';
import { vocabBlockWidth } from './vocab-blocks.js';

export { VOCAB_BLOCK, vocabBlockWidth } from './vocab-blocks.js';

export interface VocabReductionTarget {
  /** The value ArgMax or TopK reduces over its last axis: a float tensor of rank `rank` whose last dimension is `vocab`. */
  input: string;
  rank: number;
  vocab: number;
  /** The largest k a TopK over it is asked for (1 for ArgMax): a block must hold k ids. */
  maxK?: number;
}

/**
 * A decoder graph (target.onnx, draft.onnx, or a loop's rewrite of one) with the ArgMax over its logits
 * [1,S,V] in two levels. Throws when the graph has no ArgMax producing its argmax output.
 */
export function decoderArgmaxInTwoLevels(decoder: ModelProto, vocab: number): { model: ModelProto; rewritten: number } {
  return twoLevelVocabReductions(decoder, [{ input: logitsBeforeArgmax(decoder), rank: 3, vocab }]);
}

/** The value a graph's TopK reduces to produce `output` (its values or its indices). */
export function topkInputOf(model: ModelProto, output: string): string {
  const producers = producersOf(model.graph.node);
  let node = producers.get(output);
  while (node?.op_type === 'Identity') node = producers.get(node.input[0]!);
  if (node?.op_type !== 'TopK') throw new Error(`${model.graph.name} graph: ${output} is not a TopK output`);
  return node.input[0]!;
}

/**
 * `model` with every ArgMax (axis −1, select_last_index 0) and TopK (axis −1, largest, sorted) that reads
 * one of `targets` computed in two levels. Returns how many nodes were rewritten; nodes over other values,
 * vocabularies with no block width and a k larger than a block are left as they are.
 */
export function twoLevelVocabReductions(model: ModelProto, targets: readonly VocabReductionTarget[]): { model: ModelProto; rewritten: number } {
  const byInput = new Map(targets.map((t) => [t.input, t]));
  const added: Replacement[] = [];
  let rewritten = 0;
  const node = model.graph.node.flatMap((n): NodeProto[] => {
    const target = byInput.get(n.input[0]!);
    if (!target || (n.domain ?? '') !== '') return [n];
    const width = vocabBlockWidth(target.vocab);
    if (width === undefined || (target.maxK ?? 1) > width) return [n];
    const axis = intAttributeOf(n, 'axis') ?? (n.op_type === 'TopK' ? -1 : 0);
    if (axis !== -1 && axis !== target.rank - 1) return [n];
    const argmax = n.op_type === 'ArgMax' && (intAttributeOf(n, 'select_last_index') ?? 0) === 0;
    const topk = n.op_type === 'TopK' && (intAttributeOf(n, 'largest') ?? 1) === 1 && (intAttributeOf(n, 'sorted') ?? 1) === 1;
    if (!argmax && !topk) return [n];
    const replacement = twoLevel(n, target, width, argmax ? 'argmax' : 'topk');
    rewritten++;
    added.push(replacement);
    return replacement.nodes;
  });
  if (rewritten === 0) return { model, rewritten };
  const initializer = [...model.graph.initializer, ...added.flatMap((a) => a.initializers)];
  return { model: { ...model, graph: { ...model.graph, node, initializer } }, rewritten };
}

/** Nodes that replace one, and the initializers they read. */
type Replacement = { nodes: NodeProto[]; initializers: NonNullable<ModelProto['graph']['initializer']> };

/**
 * The nodes (named under the original node's name) that compute `node`'s outputs in two levels:
 * `argmax` → the index of the maximum (with the node's keepdims); `topk` → the k largest values and their ids
 * (k: the node's second input, at most `width`).
 */
function twoLevel(node: NodeProto, target: VocabReductionTarget, width: number, kind: 'argmax' | 'topk'): Replacement {
  const keepdims = kind === 'argmax' ? (intAttributeOf(node, 'keepdims') ?? 1) : 1;
  const blocks = target.vocab / width;
  const b = new GraphBuilder(`${node.name}/two_level`);
  const x = b.outerValue(node.input[0]!, 'float32'); // (the element type is not used: the nodes carry none)
  const lead = new Array<number>(target.rank - 1).fill(0); // Reshape's 0 keeps that dimension
  // Constants under the node's name: the graph's own constants have generated names too.
  const constant = (name: string, values: number[], dims = [values.length]) => b.initializer(`${node.name}/two_level/${name}`, 'int64', dims, values);
  const k = kind === 'argmax' ? constant('one', [1]) : b.outerValue(node.input[1]!, 'int64');
  const topkAttributes = { axis: -1, largest: 1, sorted: 1 };
  b.scope(`${node.name}/two_level`, () => {
    const [inner, innerIds] = b.node('TopK', [b.op('Reshape', [x, constant('blocks', [...lead, blocks, width])]), k], { outputs: 2, attributes: topkAttributes }); // [..., B, k]
    const flat = constant('flat', [...lead, -1]);
    const ids = b.op('Reshape', [b.op('Add', [innerIds, constant('block_starts', Array.from({ length: blocks }, (_, i) => i * width), [blocks, 1])]), flat]); // vocabulary ids [..., B·k]
    const at = b.node('TopK', [b.op('Reshape', [inner, flat]), k], { outputs: kind === 'topk' ? [node.output[0]!, `${node.name}/two_level/at`] : 2, attributes: topkAttributes })[1]!;
    if (kind === 'topk') b.node('GatherElements', [ids, at], { outputs: [node.output[1]!], attributes: { axis: -1 } });
    else if (keepdims) b.node('GatherElements', [ids, at], { outputs: [node.output[0]!], attributes: { axis: -1 } });
    else b.node('Squeeze', [b.op('GatherElements', [ids, at], { axis: -1 }), constant('last_axis', [-1])], { outputs: [node.output[0]!] });
  });
  const graph = b.toModel().graph;
  return { nodes: graph.node, initializers: graph.initializer };
}
