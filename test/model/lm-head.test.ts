import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadWeights } from '../../src/model/head-weights.js';
import { buildLmHeadGraph } from '../../src/model/lm-head-graph.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import { quantizeRowsInt8 } from '../../src/model/quantize.js';
import { UserError } from '../../src/util/errors.js';
import { floats, floatTensor, int64Tensor, ints, runOnce } from './helpers/ort.js';
import * as ref from './helpers/reference-math.js';
import { expectClose, FP32_TOLERANCE, Rng } from './helpers/reference-math.js';

describe('model/lm-head-graph', () => {
  const [vocab, d, rows, k] = [23, 8, 3, 4];
  const rng = new Rng(8);
  const weight = rng.floats(vocab * d, 1 / Math.sqrt(d));
  const hidden = rng.floats(rows * d);

  it('full head: top-k of log-softmax over every row of the weight', async () => {
    const out = await runOnce(buildLmHeadGraph({ dtype: 'float32', hiddenSize: d, weights: { kind: 'float', dtype: 'float32', data: weight } }), {
      hidden: floatTensor('float32', hidden, [rows, d]),
      top_k: int64Tensor([k], [1]),
    });
    expect(out.topk_ids.dims).to.deep.equal([rows, k]);
    const logits = ref.hfLinear(hidden, rows, weight, vocab, d);
    const logprobs = ref.logSoftmaxRows(logits, rows, vocab);
    const top = ref.topKRows(logits, rows, vocab, k);
    expect(ints(out.topk_ids)).to.deep.equal(top.flat());
    expectClose(floats(out.topk_logprobs), top.flatMap((row, r) => row.map((id) => logprobs[r * vocab + id])), FP32_TOLERANCE);
  });

  it('refuses a subset id list that does not match the rows', () => {
    expect(() => buildLmHeadGraph({ dtype: 'float32', hiddenSize: d, weights: { kind: 'float', dtype: 'float32', data: weight.subarray(0, 2 * d) }, vocabIds: [1, 2, 3] })).to.throw(/3 subset ids for 2 head rows/);
    expect(() => buildLmHeadGraph({ dtype: 'float32', hiddenSize: d, weights: { kind: 'float', dtype: 'float32', data: weight.subarray(0, d + 1) } })).to.throw(/not a whole number of rows/);
  });

  it('HeadWeights reads rows from an inline weight as well as from external data', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fr-spec-head-'));
    try {
      for (const threshold of [Infinity, 0]) {
        const path = join(dir, `head-${threshold}.onnx`);
        const saved = buildLmHeadGraph({ dtype: 'float16', hiddenSize: d, weights: { kind: 'float', dtype: 'float16', data: weight } }).save(path, { externalDataThreshold: threshold });
        expect(saved.dataPath === undefined).to.equal(threshold === Infinity);
        const head = HeadWeights.open(path);
        expect([head.vocabSize, head.hiddenSize, head.storage]).to.deep.equal([vocab, d, 'float16']);
        const rowsRead = head.readRows([22, 0]);
        expect(rowsRead).to.be.instanceOf(Uint16Array).with.lengthOf(2 * d);
        const expected = buildLmHeadGraph({ dtype: 'float16', hiddenSize: d, weights: { kind: 'float', dtype: 'float16', data: weight } }).toModel().graph.initializer.find((t) => t.name === 'lm_head.weight')!.raw_data!;
        const bits = new Uint16Array(expected.buffer, expected.byteOffset, expected.byteLength / 2);
        expect(Array.from(rowsRead)).to.deep.equal([...bits.subarray(22 * d, 23 * d), ...bits.subarray(0, d)]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed int8 heads', () => {
    const { values, scales } = quantizeRowsInt8(weight, vocab, d);
    expect(() => buildLmHeadGraph({ dtype: 'float32', hiddenSize: d, weights: { kind: 'int8', values, scales: scales.subarray(1) } })).to.throw(/int8 table is not 23 rows of 8 with one scale each/);
    const dir = mkdtempSync(join(tmpdir(), 'fr-spec-head-'));
    try {
      const noScale = new GraphBuilder('no-scale');
      noScale.initializer('lm_head.weight_quantized', 'int8', [vocab, d], values);
      noScale.save(join(dir, 'no-scale.onnx'));
      expect(() => HeadWeights.open(join(dir, 'no-scale.onnx'))).to.throw(UserError, /an int8 table needs lm_head\.weight_scale, float32 \[23, 1\]/);
      const wrongType = new GraphBuilder('wrong-type');
      wrongType.initializer('lm_head.weight', 'int64', [2, 2], [1, 2, 3, 4]);
      wrongType.save(join(dir, 'wrong-type.onnx'));
      expect(() => HeadWeights.open(join(dir, 'wrong-type.onnx'))).to.throw(UserError, /lm_head\.weight must be a 2-D float16 or float32 tensor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
