import { expect } from 'chai';
import { KvArena } from '../../src/engine/kv-arena.js';

const shape = { numLayers: 2, numKvHeads: 1, headDim: 2 };
/** [S, 1, 2] rows whose values encode (layer, row): layer*100 + row*10 + element. */
const rowsOf = (layer: number, count: number, offset = 0) => Float32Array.from({ length: count * 2 }, (_, i) => layer * 100 + (offset + Math.floor(i / 2)) * 10 + (i % 2));
const newKv = (count: number, offset = 0) => ({ keys: [0, 1].map((l) => rowsOf(l, count, offset)), values: [0, 1].map((l) => rowsOf(l, count, offset).map((v) => -v)) });

describe('engine/kv-arena', () => {
  it('appends chosen rows in order: tree compaction is a row copy, rejected rows are never written', () => {
    const arena = new KvArena(shape, 'float32', 2);
    const prompt = newKv(3);
    arena.appendRows(prompt.keys, prompt.values, [0, 1, 2]);
    const tree = newKv(6, 50);
    arena.appendRows(tree.keys, tree.values, [0, 2, 5]);
    expect(arena.length).to.equal(6);
    expect(Array.from(arena.pastKeys()[1])).to.deep.equal([100, 101, 110, 111, 120, 121, 600, 601, 620, 621, 650, 651]);
    expect(Array.from(arena.pastValues()[0])).to.deep.equal([0, 1, 10, 11, 20, 21, 500, 501, 520, 521, 550, 551].map((v) => -v));
    expect(Array.from(arena.row(0, 4, 'key'))).to.deep.equal([520, 521]);
  });

  it('feeds zero-copy views of exactly the cached rows; grows without losing rows; truncates to rewind', () => {
    const arena = new KvArena(shape, 'float16', 1);
    for (let i = 0; i < 5; i++) {
      const kv = { keys: [Uint16Array.of(i, i), Uint16Array.of(9, 9)], values: [Uint16Array.of(i, 0), Uint16Array.of(0, 0)] };
      arena.appendRows(kv.keys, kv.values, [0]);
    }
    expect(arena.pastKeys()[0]).to.be.instanceOf(Uint16Array);
    expect(Array.from(arena.pastKeys()[0])).to.deep.equal([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    arena.truncate(2);
    expect(arena.pastKeys()[0].length).to.equal(4);
    expect(() => arena.truncate(3)).to.throw(/cannot truncate/);
    expect(() => arena.row(0, 2, 'key')).to.throw(/past the cache/);
  });
});
