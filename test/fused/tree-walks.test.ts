/**
 * The eagle loop's tree ops (src/model/fused/tree-walks.ts) and the loops' small reductions
 * (src/model/fused/loop-ops.ts), run by onnxruntime on the CPU against the host engine's own
 * walk (src/engine/tree-verify.ts) on random trees laid out as the loop lays them out: the root
 * first, then nodes whose depth never decreases, siblings with distinct tokens. And the greedy loops'
 * bodies hold no ReduceSum, ReduceMax or ArgMax, which cost far more on CUDA than the TopKs that replace them.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MASKED } from '../../src/engine/attention-bias.js';
import { SeededRandom } from '../../src/engine/random.js';
import { depthsOf, type TokenTree } from '../../src/engine/token-tree.js';
import { greedyWalk } from '../../src/engine/tree-verify.js';
import { buildEagleLoopModel } from '../../src/model/fused/eagle-loop.js';
import { firstMaxIndex, loopBodyOf, noStopIdAmong } from '../../src/model/fused/loop-ops.js';
import { buildSpsLoopModel } from '../../src/model/fused/sps-loop.js';
import { buildVanillaLoopModel } from '../../src/model/fused/vanilla-loop.js';
import { greedyTreeWalk, treeAncestry } from '../../src/model/fused/tree-walks.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import { decodeModel, type ModelProto } from '../../src/model/onnx/proto.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { tinyFusedModelSets } from './helpers/fused-cases.js';
import { runGraph } from './helpers/run-graph.js';

const ort = loadOrt();
const int64 = (values: readonly number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [values.length]);

/** A draft tree of `size` nodes, at most `depth` deep, in the loop's order: each level's nodes after the previous level's. */
function randomTree(random: SeededRandom, size: number, depth: number, vocab: number): TokenTree {
  const parents = [-1];
  const levels: number[][] = [[0]];
  for (let node = 1; node < size; node++) {
    // The deepest level so far, or the next one down.
    const level = levels.length <= depth && (levels.length === 1 || random.uniform() < 0.3) ? levels.length : levels.length - 1;
    const above = levels[level - 1]!;
    parents.push(above[Math.floor(random.uniform() * above.length)]!);
    (levels[level] ??= []).push(node);
  }
  // Distinct tokens among siblings.
  const tokens: number[] = [];
  parents.forEach((parent, i) => {
    const taken = new Set(parents.flatMap((p, j) => (j < i && p === parent ? [tokens[j]!] : [])));
    let token = Math.floor(random.uniform() * vocab);
    while (taken.has(token)) token = (token + 1) % vocab;
    tokens.push(token);
  });
  return { tokens, parents };
}

function treeGraph(size: number, depth: number): ModelProto {
  const b = new GraphBuilder('tree', { opsetVersion: 21 });
  const parents = b.input('parents', 'int64', [size]);
  const tokens = b.input('tokens', 'int64', [size]);
  const depths = b.input('depths', 'int64', [size]);
  const argmax = b.input('argmax', 'int64', [size]);
  const { ancestors, bias } = treeAncestry(b, parents, size, depth, MASKED);
  const walk = greedyTreeWalk(b, { tokens, parents, depths, ancestors, size, depth }, argmax);
  b.output(bias, 'float32', [size, size], 'bias');
  b.output(walk.pathNodes, 'int64', [depth + 1], 'path');
  b.output(walk.count, 'int64', [], 'count');
  b.output(walk.next, 'int64', [], 'next');
  return b.toModel();
}

describe('fused tree ops: ancestry bias and greedy walk (CPU)', () => {
  const random = new SeededRandom(97);
  for (const [size, depth] of [[1, 1], [2, 1], [8, 3], [20, 4], [60, 6]] as const) {
    it(`equal the host's mask and greedy walk on random trees of ${size} nodes, depth ≤ ${depth}`, async () => {
      const model = treeGraph(size, depth);
      for (let trial = 0; trial < 12; trial++) {
        const tree = randomTree(random, size, depth, 100);
        const depths = depthsOf(tree);
        // The target's argmax at each node: often a child's token, so that paths of every length are accepted.
        const argmax = tree.tokens.map((_, node) => {
          const children = tree.parents.flatMap((p, c) => (p === node ? [c] : []));
          return children.length > 0 && random.uniform() < 0.7 ? tree.tokens[children[Math.floor(random.uniform() * children.length)]!]! : Math.floor(random.uniform() * 100);
        });
        const out = await runGraph(model, {
          parents: int64(tree.parents.map((p) => Math.max(p, 0))), // the root is its own parent
          tokens: int64(tree.tokens),
          depths: int64(depths),
          argmax: int64(argmax),
        });
        const expectedBias = tree.parents.flatMap((_, i) => {
          const line = new Set<number>();
          for (let n = i; n >= 0; n = tree.parents[n]!) line.add(n);
          return tree.parents.map((__, j) => (line.has(j) ? 0 : MASKED));
        });
        expect(out.bias!.map((v) => (v === 0 ? 0 : MASKED)), `trial ${trial}: bias`).to.deep.equal(expectedBias);
        const host = greedyWalk(tree, 0, (node) => argmax[node]!);
        expect(out.count, `trial ${trial}: count`).to.deep.equal([host.path.length]);
        expect(out.path!.slice(0, host.path.length), `trial ${trial}: path`).to.deep.equal(host.path);
        expect(out.path!.slice(host.path.length).every((n) => n === 0), `trial ${trial}: the root past the path`).to.equal(true);
        expect(out.next, `trial ${trial}: next`).to.deep.equal([host.next]);
      }
    });
  }
});

describe('fused loop reductions by TopK (CPU)', () => {
  const random = new SeededRandom(5);

  it('noStopIdAmong: true exactly when no token is a stop id, with no stop ids, and never for the −1 padding', async () => {
    const b = new GraphBuilder('stops', { opsetVersion: 21 });
    const tokens = b.input('tokens', 'int64', ['n']);
    const stops = b.input('stops', 'int64', ['k']);
    b.output(noStopIdAmong(b, tokens, stops), 'bool', [], 'none');
    const model = b.toModel();
    const cases: [number[], number[]][] = [[[3, 4, -1], []], [[3, 4, -1], [4]], [[3, 4, -1], [9, 10]], [[-1, -1], [7]], [[7], [7]]];
    for (let i = 0; i < 20; i++) {
      cases.push([Array.from({ length: 1 + Math.floor(random.uniform() * 6) }, () => Math.floor(random.uniform() * 8) - 1), Array.from({ length: Math.floor(random.uniform() * 3) }, () => Math.floor(random.uniform() * 8))]);
    }
    for (const [t, s] of cases) {
      const out = await runGraph(model, { tokens: int64(t), stops: int64(s) });
      expect(out.none, `tokens ${t}, stops ${s}`).to.deep.equal([t.some((token) => s.includes(token)) ? 0 : 1]);
    }
  });

  it('firstMaxIndex: ArgMax\'s first maximum, ties included', async () => {
    const b = new GraphBuilder('first', { opsetVersion: 21 });
    const x = b.input('x', 'float32', ['n']);
    b.output(firstMaxIndex(b, x), 'int64', [], 'first');
    const model = b.toModel();
    for (let i = 0; i < 30; i++) {
      const values = Array.from({ length: 1 + Math.floor(random.uniform() * 9) }, () => Math.floor(random.uniform() * 3));
      const out = await runGraph(model, { x: new ort.Tensor('float32', Float32Array.from(values), [values.length]) });
      expect(out.first, `${values}`).to.deep.equal([values.indexOf(Math.max(...values))]);
    }
  });
});

describe('greedy fused loops reduce only with TopK', function () {
  const dirs = tinyFusedModelSets('fr-spec-loop-reductions-');
  // onnxruntime's CUDA ReduceSum, ReduceMax and ArgMax cost far more per node than TopK: removing the eagle loop's
  // three took 8-12% off an eagle2 cycle at Llama-3-8B shape (docs/fused-loop.md).
  const REDUCTIONS = ['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceMean', 'ArgMax', 'ArgMin'];

  for (const set of ['fp32, fused ops', 'fp16, fused ops'] as const) {
    // With fused operators the inlined graphs normalize with SkipSimplifiedLayerNormalization, so every reduction
    // found would be the loops' own (standard-operator graphs reduce in their RMSNorm, as exported).
    it(`vanilla, eagle and sps loop bodies have no ReduceSum, ReduceMax or ArgMax (${set})`, () => {
      const read = (file: string) => decodeModel(readFileSync(join(dirs[set], file)));
      const config = JSON.parse(readFileSync(join(dirs[set], 'config.json'), 'utf8'));
      const dtype = set.startsWith('fp16') ? ('float16' as const) : ('float32' as const);
      const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype });
      const loops = {
        vanilla: buildVanillaLoopModel(read('target.onnx'), kv(config.target.architecture), { maxPositions: 64, vocabSize: config.vocab_size }),
        'vanilla, rows reserved': buildVanillaLoopModel(read('target.onnx'), kv(config.target.architecture), { maxPositions: 64, vocabSize: config.vocab_size, reserveRows: true }),
        eagle: buildEagleLoopModel({ target: read('target.onnx'), eagle: read('eagle.onnx'), head: read('lm_head.onnx'), targetKv: kv(config.target.architecture), eagleKv: kv(config.eagle.architecture), hiddenSize: config.hidden_size, tree: { depth: 4, topK: 3, tokens: 10 }, contextLength: 64, vocabSize: config.vocab_size, headVocabSize: config.lm_head.vocab_size }),
        sps: buildSpsLoopModel({ target: read('target.onnx'), draft: read('draft.onnx'), targetKv: kv(config.target.architecture), draftKv: kv(config.draft.architecture), gamma: 3, maxPending: 8, contextLength: 64, vocabSize: config.vocab_size, draftVocabSize: config.draft.architecture.vocab_size }),
      };
      for (const [name, loop] of Object.entries(loops)) {
        const found = loopBodyOf(loop).node.filter((n) => REDUCTIONS.includes(n.op_type)).map((n) => `${n.op_type} ${n.name}`);
        expect(found, name).to.deep.equal([]);
      }
    });
  }
});
