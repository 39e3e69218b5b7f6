import { expect } from 'chai';
import { buildAttentionBias, MASKED } from '../../src/engine/attention-bias.js';
import { bucketSize } from '../../src/engine/buckets.js';
import { CandidatePool } from '../../src/engine/draft-tree.js';
import { SeededRandom } from '../../src/engine/random.js';
import { chainTree, checkTree, childrenOf, depthsOf, graftTree, positionsOf, type TokenTree } from '../../src/engine/token-tree.js';

/** The mask as rows of 0/1 (1 = visible). */
function visibility(bias: Float32Array, rows: number): number[][] {
  const width = bias.length / rows;
  return Array.from({ length: rows }, (_, r) => Array.from(bias.subarray(r * width, (r + 1) * width), (v) => (v === 0 ? 1 : (expect(v).to.equal(MASKED), 0))));
}

describe('engine/token trees, masks and positions', () => {
  const tree: TokenTree = { tokens: [10, 11, 12, 13, 14, 15], parents: [-1, 0, 0, 1, 1, 3] };

  it('depths, positions, children', () => {
    checkTree(tree);
    expect(depthsOf(tree)).to.deep.equal([0, 1, 1, 2, 2, 3]);
    expect(positionsOf(tree, 7)).to.deep.equal([7, 8, 8, 9, 9, 10]);
    expect(childrenOf(tree)).to.deep.equal([[1, 2], [3, 4], [], [5], [], []]);
    expect(() => checkTree({ tokens: [1, 2], parents: [-1, 1] })).to.throw(/parents must come first/);
  });

  it('grafts a trie below a chain node', () => {
    const grafted = graftTree(chainTree([1, 2, 3]), 2, { tokens: [7, 8, 9], parents: [-1, 0, -1] });
    expect(grafted).to.deep.equal({ tokens: [1, 2, 3, 7, 8, 9], parents: [-1, 0, 1, 2, 3, 2] });
  });

  it('tree mask: the whole past, ancestors and self; padded rows see only themselves', () => {
    const rows = bucketSize(tree.tokens.length);
    expect(rows).to.equal(8);
    const seen = visibility(buildAttentionBias({ pastLength: 2, tree, rows }), rows);
    expect(seen).to.deep.equal([
      [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
      [1, 1, 1, 0, 1, 0, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 1, 0, 0, 0, 0],
      [1, 1, 1, 1, 0, 0, 1, 0, 0, 0],
      [1, 1, 1, 1, 0, 1, 0, 1, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
      [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    ]);
  });

  it('a chain is a causal mask', () => {
    expect(visibility(buildAttentionBias({ pastLength: 1, tree: chainTree([5, 6, 7]), rows: 3 }), 3)).to.deep.equal([
      [1, 1, 0, 0],
      [1, 1, 1, 0],
      [1, 1, 1, 1],
    ]);
  });

  it('EAGLE expansion: shared stable past plus each node\'s ancestors\' scratch rows', () => {
    const seen = visibility(buildAttentionBias({ pastLength: 5, sharedPast: 3, extraPast: [[3], [4], []], tree: { tokens: [1, 2, 3], parents: [-1, -1, -1] }, rows: 3 }), 3);
    expect(seen).to.deep.equal([
      [1, 1, 1, 1, 0, 1, 0, 0],
      [1, 1, 1, 0, 1, 0, 1, 0],
      [1, 1, 1, 0, 0, 0, 0, 1],
    ]);
  });

  it('bucket sizes', () => {
    expect([1, 3, 5, 9, 13, 60, 61, 200, 257, 300].map(bucketSize)).to.deep.equal([1, 4, 8, 12, 16, 64, 64, 256, 384, 384]);
  });
});

describe('engine/draft-tree (EAGLE-2 expansion and rerank)', () => {
  it('scores are cumulative log-probs; candidate indices follow EAGLE\'s global index', () => {
    const k = 2;
    const pool = new CandidatePool();
    const first = pool.addLevel([{ parent: -1, ids: [5, 6], logprobs: [-0.1, -2] }]);
    expect(first).to.deep.equal([0, 1]);
    const second = pool.addLevel(first.map((parent, row) => ({ parent, ids: [7 + row, 9 + row], logprobs: [-0.5, -1] })));
    expect(second).to.deep.equal([2, 3, 4, 5]);
    // depth-2 node c = parentSlot·k + childRank sits at k + c.
    expect(pool.candidates[k + 1 * k + 1]).to.deep.include({ token: 10, parent: 1, depth: 2 });
    expect(pool.candidates[3].score).to.be.closeTo(-1.1, 1e-12);
    const third = pool.addLevel(pool.best(second, k).map((parent) => ({ parent, ids: [1, 2], logprobs: [-0.2, -0.3] })));
    expect(pool.best(second, k)).to.deep.equal([2, 3]);
    expect(third[0]).to.equal(k + k * k);
    expect(pool.ancestors(third[0])).to.deep.equal([2, 0]);
  });

  it('rerank: best (N−1) by score, laid out in candidate order with parent links', () => {
    const pool = new CandidatePool();
    const first = pool.addLevel([{ parent: -1, ids: [5, 6, 7], logprobs: [-0.1, -1.5, -3] }]);
    pool.addLevel([{ parent: first[0], ids: [8, 9], logprobs: [-0.2, -2] }, { parent: first[1], ids: [10, 11], logprobs: [-0.05, -4] }]);
    const { tree, candidateOf } = pool.toTree(99, 5);
    // scores: 5:-0.1 6:-1.5 7:-3 8:-0.3 9:-2.1 10:-1.55 11:-5.5 → best 4: 5, 8, 6, 10
    expect(tree.tokens).to.deep.equal([99, 5, 6, 8, 10]);
    expect(tree.parents).to.deep.equal([-1, 0, 0, 1, 2]);
    expect(candidateOf).to.deep.equal([-1, 0, 1, 3, 5]);
  });

  it('ties go to the lower index, so equal scores (log-prob 0) never orphan a child', () => {
    const pool = new CandidatePool();
    const first = pool.addLevel([{ parent: -1, ids: [1, 2], logprobs: [0, 0] }]);
    const second = pool.addLevel(first.map((parent) => ({ parent, ids: [3, 4], logprobs: [0, 1e-7] })));
    pool.addLevel(second.slice(2).map((parent) => ({ parent, ids: [5], logprobs: [0] })));
    // All nine candidates score 0 (positive log-probs are rounding and are clamped); 4 are kept.
    const { tree } = pool.toTree(0, 5);
    expect(tree.tokens).to.deep.equal([0, 1, 2, 3, 4]);
    expect(tree.parents).to.deep.equal([-1, 0, 0, 1, 1]);
  });

  it('random pools with frequent ties: every tree is closed under parents and holds the best candidates', () => {
    const random = new SeededRandom(3);
    for (let trial = 0; trial < 300; trial++) {
      const k = 1 + Math.floor(random.uniform() * 4);
      const depth = 1 + Math.floor(random.uniform() * 4);
      const size = 2 + Math.floor(random.uniform() * 20);
      const logprob = () => -Math.floor(random.uniform() * 3) * 0.5;
      const row = (parent: number) => ({ parent, ids: Array.from({ length: k }, (_, j) => j), logprobs: Array.from({ length: k }, logprob).sort((a, b) => b - a) });
      const pool = new CandidatePool();
      let frontier = pool.addLevel([row(-1)]);
      for (let level = 1; level < depth; level++) frontier = pool.best(pool.addLevel(frontier.map(row)), k);
      const { tree, candidateOf } = pool.toTree(-1, size);
      expect(tree.tokens.length).to.equal(Math.min(size, pool.candidates.length + 1));
      checkTree(tree);
      tree.parents.forEach((parent, node) => {
        if (node > 0) expect(candidateOf[parent]).to.equal(pool.candidates[candidateOf[node]].parent);
      });
      const worstKept = Math.min(...candidateOf.slice(1).map((c) => pool.candidates[c].score));
      const kept = new Set(candidateOf);
      for (const [i, c] of pool.candidates.entries()) if (!kept.has(i)) expect(c.score).to.be.at.most(worstKept);
    }
  });
});
