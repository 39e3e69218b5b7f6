import { expect } from 'chai';
import { learnFromVerification } from '../../src/engine/methods/ouroboros.js';
import { PhrasePool, phraseTrie } from '../../src/engine/phrase-pool.js';
import { chainTree, graftTree } from '../../src/engine/token-tree.js';

describe('engine/phrase-pool (Ouroboros)', () => {
  it('keeps the most recent phrases per key, up to its capacity', () => {
    const pool = new PhrasePool(2, 3);
    pool.insert(1, [2, 3]);
    pool.insert(1, [4, 5]);
    pool.insert(1, [6, 7]);
    pool.insert(1, [2, 3]); // re-inserting moves it to the most recent place
    pool.insert(1, [8, 9]); // over capacity: the oldest, [4, 5], goes
    pool.insert(1, [1]); // wrong length: ignored
    expect(pool.all(1)).to.deep.equal([[6, 7], [2, 3], [8, 9]]);
    expect(pool.recent(1, 2)).to.deep.equal([[8, 9], [2, 3]]);
    expect(pool.recent(7, 2)).to.deep.equal([]);
  });

  it('inserts every full window of a token run', () => {
    const pool = new PhrasePool(2, 5);
    pool.insertWindows([1, 2, 3, 1, 4]);
    expect(pool.all(1)).to.deep.equal([[2, 3]]);
    expect(pool.all(2)).to.deep.equal([[3, 1]]);
    expect(pool.all(3)).to.deep.equal([[1, 4]]);
    expect(pool.keys).to.equal(3);
  });

  it('merges phrases into a trie with distinct siblings', () => {
    expect(phraseTrie([[5, 6, 7], [5, 6, 8], [9, 6, 7], [5, 6, 7]])).to.deep.equal({
      tokens: [5, 6, 7, 8, 9, 6, 7],
      parents: [-1, 0, 1, 1, -1, 4, 5],
    });
    expect(phraseTrie([])).to.deep.equal({ tokens: [], parents: [] });
  });

  describe('phrases from verification', () => {
    // root 50, drafts 51 52 53, then phrases [60 61 62] and [60 63 64] after the last draft.
    const tree = graftTree(chainTree([50, 51, 52, 53]), 3, phraseTrie([[60, 61, 62], [60, 63, 64]]));
    const argmax = (node: number) => 100 + node;

    it('a rejection inside the draft: windows of the target\'s predictions from the mismatch on', () => {
      const pool = new PhrasePool(2, 4);
      learnFromVerification(pool, tree, argmax, 3, { path: [0], next: 100 });
      // predictions after nodes 0..3: 100 101 102 103
      expect(pool.all(100)).to.deep.equal([[101, 102]]);
      expect(pool.all(101)).to.deep.equal([[102, 103]]);
      expect(pool.keys).to.equal(2);
    });

    it('the whole draft accepted: the target\'s continuation of each phrase it checked, keyed by the last draft', () => {
      const pool = new PhrasePool(3, 4);
      learnFromVerification(pool, tree, argmax, 3, { path: [0, 1, 2, 3, 4], next: 104 });
      // nodes: 4 = 60, 5 = 61, 6 = 62, 7 = 63, 8 = 64; predictions after [53, 60, 61] and [53, 60, 63]
      expect(pool.all(53)).to.deep.equal([[103, 104, 105], [103, 104, 107]]);
    });
  });
});
