/**
 * ArgMax and TopK over the vocabulary in two levels (src/model/fused/vocab-reductions.ts) give exactly the
 * one-level results: on random values with many ties, -Infinity entries, fp32 and fp16, rank 2 and 3.
 */
import { expect } from 'chai';
import { SeededRandom } from '../../src/engine/random.js';
import { twoLevelVocabReductions, vocabBlockWidth } from '../../src/model/fused/vocab-reductions.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import type { ModelProto } from '../../src/model/onnx/proto.js';
import { float32ToFloat16Bits } from '../../src/model/half-precision.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { runGraph } from './helpers/run-graph.js';

const ort = loadOrt();

/** A graph of one reduction over the last axis of x (shape `dims`): ArgMax, or TopK with k as an input. */
function reductionGraph(kind: 'argmax' | 'topk', dims: number[], dtype: 'float32' | 'float16', keepdims = 0): ModelProto {
  const b = new GraphBuilder('reduce', { opsetVersion: 21 });
  const x = b.input('x', dtype, dims);
  if (kind === 'argmax') {
    b.output(b.op('ArgMax', [x], { axis: -1, keepdims }), 'int64', keepdims ? [...dims.slice(0, -1), 1] : dims.slice(0, -1), 'ids');
  } else {
    const k = b.input('k', 'int64', [1]);
    const [values, ids] = b.node('TopK', [x, k], { outputs: 2, attributes: { axis: -1, largest: 1, sorted: 1 } });
    b.output(values, dtype, [...dims.slice(0, -1), 'k'], 'values');
    b.output(ids, 'int64', [...dims.slice(0, -1), 'k'], 'ids');
  }
  return b.toModel();
}


describe('two-level ArgMax and TopK over the vocabulary', () => {
  it('picks a block width that divides the vocabulary', () => {
    expect(vocabBlockWidth(128256)).to.equal(256);
    expect(vocabBlockWidth(32768)).to.equal(256);
    expect(vocabBlockWidth(151936)).to.equal(128); // 2^7 · 1187
    expect(vocabBlockWidth(32)).to.equal(8);
    expect(vocabBlockWidth(16)).to.equal(4);
    expect(vocabBlockWidth(1031)).to.equal(undefined); // a prime
  });

  const random = new SeededRandom(41);
  for (const dtype of ['float32', 'float16'] as const) {
    for (const [kind, dims, k] of [['argmax', [2, 3, 96], 1], ['argmax', [5, 1024], 1], ['topk', [4, 96], 5], ['topk', [3, 1024], 10]] as const) {
      it(`${kind} over [${dims.join(',')}] (${dtype}${kind === 'topk' ? `, k ${k}` : ''}) equals the one-level result, ties and -Infinity included`, async () => {
        const count = dims.reduce((a, b) => a * b, 1);
        // Few distinct values: many ties, within and across blocks; some -Infinity.
        const values = Float32Array.from({ length: count }, () => (random.uniform() < 0.05 ? -Infinity : Math.floor(random.uniform() * 6) / 2));
        const data = dtype === 'float32' ? values : float32ToFloat16Bits(values);
        const feeds: Record<string, unknown> = { x: new ort.Tensor(dtype, data, [...dims]) };
        if (kind === 'topk') feeds.k = new ort.Tensor('int64', BigInt64Array.of(BigInt(k)), [1]);
        for (const keepdims of kind === 'argmax' ? [0, 1] : [0]) {
          const original = reductionGraph(kind, [...dims], dtype, keepdims);
          const { model, rewritten } = twoLevelVocabReductions(original, [{ input: 'x', rank: dims.length, vocab: dims.at(-1)!, maxK: k }]);
          expect(rewritten).to.equal(1);
          expect(model.graph.node.map((n) => n.op_type)).to.not.include('ArgMax');
          expect(model.graph.node.filter((n) => n.op_type === 'TopK')).to.have.lengthOf(2);
          expect(await runGraph(model, feeds)).to.deep.equal(await runGraph(original, feeds));
        }
      });
    }
  }

  it('leaves alone what it cannot rewrite exactly: other inputs, select_last_index, a k larger than a block, no block width', () => {
    const argmax = reductionGraph('argmax', [2, 96], 'float32');
    expect(twoLevelVocabReductions(argmax, [{ input: 'other', rank: 2, vocab: 96 }]).rewritten).to.equal(0);
    expect(twoLevelVocabReductions(argmax, [{ input: 'x', rank: 2, vocab: 97 }]).rewritten).to.equal(0);
    const last = { ...argmax, graph: { ...argmax.graph, node: argmax.graph.node.map((n) => ({ ...n, attribute: [...(n.attribute ?? []), { name: 'select_last_index', type: 2, i: 1 }] })) } };
    expect(twoLevelVocabReductions(last as ModelProto, [{ input: 'x', rank: 2, vocab: 96 }]).rewritten).to.equal(0);
    const topk = reductionGraph('topk', [2, 96], 'float32');
    expect(twoLevelVocabReductions(topk, [{ input: 'x', rank: 2, vocab: 96, maxK: 40 }]).rewritten).to.equal(0);
    expect(twoLevelVocabReductions(topk, [{ input: 'x', rank: 2, vocab: 96, maxK: 8 }]).rewritten).to.equal(1);
  });
});
