import { expect } from 'chai';
import { roundToFloat16 } from '../../src/model/half-precision.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import type { FloatDType } from '../../src/model/onnx/dtypes.js';
import {
  applyRope,
  argMaxLastAxis,
  embedding,
  groupedQueryAttention,
  linear,
  logSoftmaxLastAxis,
  rmsNorm,
  ropeInverseFrequencies,
  ropeTables,
  subsetLmHeadTopK,
  swiGluMlp,
  topKLastAxis,
} from '../../src/model/onnx/ops.js';
import { transpose2d } from '../../src/model/weight-loader.js';
import { floats, floatTensor, int64Tensor, ints, runOnce } from './helpers/ort.js';
import * as ref from './helpers/reference-math.js';
import { expectClose, FP16_TOLERANCE, FP32_TOLERANCE, Rng } from './helpers/reference-math.js';

const FLOAT_TYPES: FloatDType[] = ['float32', 'float16'];
const tolerance = (dtype: FloatDType) => (dtype === 'float32' ? FP32_TOLERANCE : FP16_TOLERANCE);
/** What the graph holds for host values of this type. */
const held = (dtype: FloatDType, values: Float32Array) => (dtype === 'float16' ? roundToFloat16(values) : values);

describe('model/onnx ops', () => {
  for (const dtype of FLOAT_TYPES) {
    describe(dtype, () => {
      it('linear with bias', async () => {
        const rng = new Rng(10);
        const [rows, inFeatures, outFeatures] = [5, 12, 7];
        const weight = held(dtype, rng.floats(outFeatures * inFeatures)); // HF [out, in]
        const bias = held(dtype, rng.floats(outFeatures));
        const x = held(dtype, rng.floats(rows * inFeatures));
        const b = new GraphBuilder('linear');
        const input = b.input('x', dtype, [1, rows, inFeatures]);
        const w = b.initializer('w', dtype, [inFeatures, outFeatures], transpose2d(weight, outFeatures, inFeatures));
        const y = linear(b, input, w, b.initializer('bias', dtype, [outFeatures], bias));
        b.output(y, dtype, [1, rows, outFeatures], 'y');
        const out = await runOnce(b, { x: floatTensor(dtype, x, [1, rows, inFeatures]) });
        expectClose(floats(out.y), ref.hfLinear(x, rows, weight, outFeatures, inFeatures, bias), tolerance(dtype));
      });

      it('RMSNorm', async () => {
        const rng = new Rng(11);
        const [rows, width, eps] = [6, 16, 1e-5];
        const x = held(dtype, rng.floats(rows * width, 3));
        const weight = held(dtype, rng.floats(width, 0.2, 1));
        const b = new GraphBuilder('rms');
        const y = rmsNorm(b, b.input('x', dtype, [1, rows, width]), b.initializer('w', dtype, [width], weight), eps);
        b.output(y, dtype, [1, rows, width], 'y');
        const out = await runOnce(b, { x: floatTensor(dtype, x, [1, rows, width]) });
        expectClose(floats(out.y), ref.rmsNorm(x, rows, width, weight, eps), tolerance(dtype));
      });

      it('SwiGLU MLP', async () => {
        const rng = new Rng(12);
        const [rows, d, inner] = [4, 8, 24];
        const gate = held(dtype, rng.floats(inner * d, 0.4));
        const up = held(dtype, rng.floats(inner * d, 0.4));
        const down = held(dtype, rng.floats(d * inner, 0.2));
        const x = held(dtype, rng.floats(rows * d));
        const b = new GraphBuilder('mlp');
        const y = swiGluMlp(b, b.input('x', dtype, [1, rows, d]), {
          gate: b.initializer('gate', dtype, [d, inner], transpose2d(gate, inner, d)),
          up: b.initializer('up', dtype, [d, inner], transpose2d(up, inner, d)),
          down: b.initializer('down', dtype, [inner, d], transpose2d(down, d, inner)),
        });
        b.output(y, dtype, [1, rows, d], 'y');
        const out = await runOnce(b, { x: floatTensor(dtype, x, [1, rows, d]) });
        expectClose(floats(out.y), ref.swiGlu(x, rows, d, inner, gate, up, down), tolerance(dtype));
      });

      it('RoPE at non-contiguous positions', async () => {
        const rng = new Rng(13);
        const [heads, headDim] = [3, 8];
        const positions = [0, 5, 6, 6, 7, 300];
        const s = positions.length;
        const invFreq = ropeInverseFrequencies(headDim, 10000);
        const x = held(dtype, rng.floats(s * heads * headDim));
        const b = new GraphBuilder('rope');
        const tables = ropeTables(b, b.input('position_ids', 'int64', [1, s]), b.initializer('inv_freq', 'float32', [headDim / 2], invFreq), dtype);
        b.output(applyRope(b, b.input('x', dtype, [1, s, heads, headDim]), tables), dtype, [1, s, heads, headDim], 'y');
        const out = await runOnce(b, { x: floatTensor(dtype, x, [1, s, heads, headDim]), position_ids: int64Tensor(positions, [1, s]) });
        expectClose(floats(out.y), ref.applyRope(x, positions, heads, headDim, invFreq), tolerance(dtype));
      });

      for (const [heads, kvHeads] of [[4, 2], [4, 4], [4, 1]]) {
        it(`attention with ${heads} heads over ${kvHeads} KV heads, past and a tree mask`, async () => {
          const rng = new Rng(14 + kvHeads);
          const headDim = 8;
          const parents = [-1, 0, 0, 1, 2];
          const [s, past] = [parents.length, 3];
          const t = past + s;
          const q = held(dtype, rng.floats(s * heads * headDim));
          const k = held(dtype, rng.floats(s * kvHeads * headDim));
          const v = held(dtype, rng.floats(s * kvHeads * headDim));
          const pastK = held(dtype, rng.floats(past * kvHeads * headDim));
          const pastV = held(dtype, rng.floats(past * kvHeads * headDim));
          const mask = ref.treeMask(parents, past);
          const b = new GraphBuilder('attention');
          const y = groupedQueryAttention(
            b,
            {
              query: b.input('q', dtype, [1, s, heads, headDim]),
              key: b.input('k', dtype, [1, s, kvHeads, headDim]),
              value: b.input('v', dtype, [1, s, kvHeads, headDim]),
              pastKey: b.input('past_k', dtype, [1, 'P', kvHeads, headDim]),
              pastValue: b.input('past_v', dtype, [1, 'P', kvHeads, headDim]),
              attentionBias: b.input('bias', 'float32', [1, 1, s, 'T']),
            },
            { numHeads: heads, numKvHeads: kvHeads, headDim },
          );
          b.output(y, dtype, [1, s, heads * headDim], 'y');
          const out = await runOnce(b, {
            q: floatTensor(dtype, q, [1, s, heads, headDim]),
            k: floatTensor(dtype, k, [1, s, kvHeads, headDim]),
            v: floatTensor(dtype, v, [1, s, kvHeads, headDim]),
            past_k: floatTensor(dtype, pastK, [1, past, kvHeads, headDim]),
            past_v: floatTensor(dtype, pastV, [1, past, kvHeads, headDim]),
            bias: floatTensor('float32', mask, [1, 1, s, t]),
          });
          const expected = ref.attention(q, ref.concat(pastK, k), ref.concat(pastV, v), mask, s, t, heads, kvHeads, headDim);
          expectClose(floats(out.y), expected, tolerance(dtype));
        });
      }

      it('embedding, LM head, ArgMax, TopK and log-softmax', async () => {
        const rng = new Rng(20);
        const [s, d, vocab, k] = [3, 8, 29, 4];
        const table = held(dtype, rng.floats(vocab * d));
        const head = held(dtype, rng.floats(vocab * d)); // HF [V, d]
        const ids = [3, 28, 0];
        const b = new GraphBuilder('head');
        const hidden = embedding(b, b.initializer('embed', dtype, [vocab, d], table), b.input('ids', 'int64', [1, s]));
        const logits = linear(b, hidden, b.initializer('head', dtype, [d, vocab], transpose2d(head, vocab, d)));
        const top = topKLastAxis(b, logSoftmaxLastAxis(b, logits), k);
        b.output(argMaxLastAxis(b, logits), 'int64', [1, s], 'argmax');
        b.output(top.indices, 'int64', [1, s, k], 'topk_ids');
        b.output(top.values, 'float32', [1, s, k], 'topk_logprobs');
        const out = await runOnce(b, { ids: int64Tensor(ids, [1, s]) });

        const x = new Float32Array(s * d);
        ids.forEach((id, i) => x.set(table.subarray(id * d, (id + 1) * d), i * d));
        const expectedLogits = ref.hfLinear(x, s, head, vocab, d);
        const expectedTop = ref.topKRows(expectedLogits, s, vocab, k);
        const logprobs = ref.logSoftmaxRows(expectedLogits, s, vocab);
        expect(ints(out.argmax)).to.deep.equal(ref.argmaxRows(expectedLogits, s, vocab));
        expect(ints(out.topk_ids)).to.deep.equal(expectedTop.flat());
        const expectedValues = expectedTop.flatMap((row, r) => row.map((id) => logprobs[r * vocab + id]));
        expectClose(floats(out.topk_logprobs), expectedValues, tolerance(dtype));
      });

      it('subset LM head: top-k over the subset, ids mapped to the full vocabulary', async () => {
        const rng = new Rng(21);
        const [s, d, vocab, k] = [2, 8, 50, 3];
        const subset = [49, 7, 3, 22, 15, 0, 31];
        const head = held(dtype, rng.floats(vocab * d)); // HF [V, d]
        const hidden = held(dtype, rng.floats(s * d));
        const b = new GraphBuilder('subset');
        const top = subsetLmHeadTopK(
          b,
          b.input('hidden', dtype, [1, s, d]),
          b.initializer('head', dtype, [d, vocab], transpose2d(head, vocab, d)),
          b.initializer('subset_ids', 'int64', [subset.length], subset),
          k,
        );
        b.output(top.ids, 'int64', [1, s, k], 'ids');
        b.output(top.logprobs, 'float32', [1, s, k], 'logprobs');
        const out = await runOnce(b, { hidden: floatTensor(dtype, hidden, [1, s, d]) });

        const subsetRows = new Float32Array(subset.length * d);
        subset.forEach((id, i) => subsetRows.set(head.subarray(id * d, (id + 1) * d), i * d));
        const subsetLogits = ref.hfLinear(hidden, s, subsetRows, subset.length, d);
        const logprobs = ref.logSoftmaxRows(subsetLogits, s, subset.length);
        const expectedTop = ref.topKRows(subsetLogits, s, subset.length, k);
        expect(ints(out.ids)).to.deep.equal(expectedTop.flat().map((i) => subset[i]));
        const expectedValues = expectedTop.flatMap((row, r) => row.map((i) => logprobs[r * subset.length + i]));
        expectClose(floats(out.logprobs), expectedValues, tolerance(dtype));
      });
    });
  }

  describe('RoPE inverse frequencies', () => {
    it('default: 1 / theta^(2i/d)', () => {
      expectClose(ropeInverseFrequencies(8, 10000), [1, 0.1, 0.01, 0.001], 1e-6);
    });

    it('llama3 scaling keeps high frequencies, divides low ones, interpolates between', () => {
      const scaling = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } as const;
      const base = ropeInverseFrequencies(128, 500000);
      const scaled = ropeInverseFrequencies(128, 500000, scaling);
      const highFreqWavelength = 8192 / 4;
      const lowFreqWavelength = 8192 / 1;
      let sawMedium = false;
      base.forEach((f, i) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < highFreqWavelength) expect(scaled[i]).to.equal(f);
        else if (wavelength > lowFreqWavelength) expect(scaled[i]).to.be.closeTo(f / 8, f * 1e-6);
        else {
          sawMedium = true;
          const smooth = (8192 / wavelength - 1) / (4 - 1);
          expect(scaled[i]).to.be.closeTo((1 - smooth) * (f / 8) + smooth * f, f * 1e-6);
          expect(scaled[i]).to.be.within(f / 8, f);
        }
      });
      expect(sawMedium).to.equal(true);
    });

    it('linear scaling divides every frequency', () => {
      expectClose(ropeInverseFrequencies(8, 10000, { type: 'linear', factor: 4 }), [0.25, 0.025, 0.0025, 0.00025], 1e-6);
    });
  });
});
