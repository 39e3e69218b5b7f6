/**
 * The compact export the demo model set ships in: every weight stored once in weights.data, fp16
 * weights under fp32 graphs, and int8 vocabulary tables (embedding and LM head, per-row scales) —
 * file sizes, numerics against the TypeScript reference, FR-Spec subset heads over int8 rows, and
 * the dequantization being folded at load time rather than run per call.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { floatDataFrom } from '../../src/model/float-data.js';
import { roundToFloat16 } from '../../src/model/half-precision.js';
import { HeadWeights } from '../../src/model/head-weights.js';
import { ModelFolder } from '../../src/model/model-folder.js';
import { decodeModel } from '../../src/model/onnx/proto.js';
import { dequantizeRowsInt8, quantizeRowsInt8 } from '../../src/model/quantize.js';
import { ModelSessions } from '../../src/model/session.js';
import { UserError } from '../../src/util/errors.js';
import { expectEachTensorOnce, storedTensors, type StoredTensor } from './helpers/onnx-files.js';
import { referenceEagleForward } from './helpers/reference-eagle.js';
import { MapWeights, referenceForward } from './helpers/reference-llama.js';
import * as ref from './helpers/reference-math.js';
import { expectClose, FP16_TOLERANCE, FP32_TOLERANCE, Rng } from './helpers/reference-math.js';
import { checkDecoder, f32, promptStep, referenceTopK, sessionStep } from './helpers/session-checks.js';
import { runExportCli, writeTinySharedModelSet, type TinyModelSet } from './helpers/tiny-models.js';

const [V, D] = [97, 32];
const GRAPHS = ['target.onnx', 'lm_head.onnx', 'eagle.onnx', 'draft.onnx'];
const VOCAB_TABLES = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

/** The values an export holds: vocabulary tables through int8 and back, other weights in `weightDtype`. */
function heldValues(weights: MapWeights, weightDtype: 'float16' | 'float32', graphDtype: 'float16' | 'float32'): MapWeights {
  const graphRound = graphDtype === 'float16' ? roundToFloat16 : (x: Float32Array) => x;
  return new MapWeights(
    new Map(
      [...weights.tensors].map(([name, t]) => {
        const data = VOCAB_TABLES.has(name) ? graphRound(dequantizeRowsInt8(quantizeRowsInt8(t.data, t.shape[0], t.shape[1]))) : weightDtype === 'float16' ? roundToFloat16(t.data) : t.data;
        return [name, { shape: t.shape, data }];
      }),
    ),
  );
}

/** All V log-probabilities per row from a head session, in vocabulary order. */
async function fullLogprobs(head: { run: ModelSessions['head']['run'] }, hidden: Float32Array, rows: number): Promise<Float64Array> {
  const top = await head.run(hidden, V);
  const out = new Float64Array(rows * V);
  top.ids.forEach((id, i) => (out[Math.floor(i / V) * V + Number(id)] = top.logprobs[i]));
  return out;
}

const distinctBytes = (tensors: StoredTensor[]) => [...new Map(tensors.filter((t) => t.location).map((t) => [t.range, t.length])).values()].reduce((a, b) => a + b, 0);

describe('model/compact export (shared weights.data, fp16 weights, int8 vocabulary tables)', () => {
  let root: string;
  let models: TinyModelSet;
  const exported = (name: string) => join(root, name);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-compact-'));
    models = writeTinySharedModelSet(root);
    const parts = ['--target', models.target.dir, '--eagle', models.eagle.dir, '--draft', models.draft.dir];
    await runExportCli([...parts, '--out', exported('fp32'), '--dtype', 'fp32']);
    await runExportCli([...parts, '--out', exported('compact'), '--dtype', 'fp32', '--weight-dtype', 'fp16', '--quantize-vocab', 'int8']);
    await runExportCli([...parts, '--out', exported('fp16-int8'), '--dtype', 'fp16', '--quantize-vocab', 'int8']);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('file sizes', () => {
    it('the tied embedding / LM head is stored once for all four graphs, as int8 [V, d]', () => {
      const stored = storedTensors(exported('compact'), GRAPHS);
      const tables = stored.filter((t) => t.name.endsWith('_quantized'));
      expect(tables.map((t) => `${t.file}:${t.name}`)).to.deep.equal([
        'target.onnx:model.embed_tokens.weight_quantized',
        'lm_head.onnx:lm_head.weight_quantized',
        'eagle.onnx:model.embed_tokens.weight_quantized',
        'draft.onnx:model.embed_tokens.weight_quantized',
      ]);
      expect(new Set(tables.map((t) => t.range)), 'one copy').to.have.property('size', 1);
      expect(tables[0]).to.deep.include({ dtype: 'int8', dims: [V, D], length: V * D });
      expectEachTensorOnce(exported('compact'), stored);
    });

    it('everything else is stored as fp16: half the fp32 export, the table a quarter', () => {
      const compact = storedTensors(exported('compact'), GRAPHS);
      const full = storedTensors(exported('fp32'), GRAPHS);
      const external = compact.filter((t) => t.location && t.dtype !== 'int8');
      expect(external.length, 'norms, projections (q/k/v and gate/up packed), EAGLE fc').to.be.above(12);
      for (const t of external) expect(t.dtype, `${t.file}: ${t.name}`).to.equal('float16');
      const fullTable = V * D * 4;
      expect(distinctBytes(full) - fullTable, 'fp32 export: one table plus the other weights').to.equal(2 * (distinctBytes(compact) - V * D));
      expectEachTensorOnce(exported('fp32'), full);
    });

    it('config.json describes the storage and keeps the checkpoint\'s context length', () => {
      const config = JSON.parse(readFileSync(join(exported('compact'), 'config.json'), 'utf8'));
      expect(config).to.deep.include({ contract_version: 2, dtype: 'float32', weights: { file: 'weights.data', dtype: 'float16', vocab_tables: 'int8' } });
      expect(config.target.architecture).to.include({ tie_word_embeddings: true, max_position_embeddings: 64 });
    });
  });

  for (const variant of [
    { name: 'compact', dtype: 'float32', weightDtype: 'float16', tol: FP32_TOLERANCE },
    { name: 'fp16-int8', dtype: 'float16', weightDtype: 'float16', tol: FP16_TOLERANCE },
  ] as const) {
    describe(`${variant.dtype} graphs over ${variant.weightDtype} weights and int8 tables: numerics`, () => {
      let sessions: ModelSessions;
      const held = (weights: MapWeights) => heldValues(weights, variant.weightDtype, variant.dtype);
      before(async () => {
        sessions = await ModelSessions.open(exported(variant.name), { ep: 'cpu', threads: 1 });
      });
      after(() => sessions?.release());

      it('target and draft match the reference over the values they hold (dequantized tables)', async () => {
        await checkDecoder(sessions.target, models.target.arch, held(models.target.weights), variant.dtype, variant.tol);
        await checkDecoder(sessions.draft!, models.draft.arch, held(models.draft.weights), variant.dtype, variant.tol);
      });

      it('the EAGLE head looks its tokens up in the int8 embedding', async () => {
        const target = held(models.target.weights);
        const features = referenceForward(models.target.arch, target, promptStep(2)).hidden;
        const step = { ...promptStep(1), feature: features };
        const expected = referenceEagleForward(models.eagle.eagle, held(models.eagle.weights), target.readFloat32('model.embed_tokens.weight').data, step);
        const actual = await sessions.eagle!.run({ ...sessionStep(step, variant.dtype), feature: floatDataFrom(variant.dtype, features) });
        expectClose(f32(actual.out), expected.out, variant.tol, 'out');
      });

      it('FR-Spec subset heads are built from int8 rows and their scales', async () => {
        const rng = new Rng(5);
        const subset = [...Array(V).keys()].sort(() => rng.next() - 0.5).slice(0, 40);
        const rows = 4;
        const hidden = floatDataFrom(variant.dtype, rng.floats(rows * D));
        const table = held(models.target.weights).readFloat32('model.embed_tokens.weight').data;
        const expected = referenceTopK(ref.hfLinear(f32(hidden), rows, table, V, D), rows, V, subset, 6);
        const top = await (await sessions.subsetHead(subset)).run(hidden, 6);
        expectClose(top.logprobs, expected.logprobs, variant.tol, 'subset log-probs');
        if (variant.dtype === 'float32') expect(Array.from(top.ids, Number)).to.deep.equal(expected.ids);
        const [viaSubset, viaFull] = await Promise.all([(await sessions.subsetHead([...Array(V).keys()].reverse())).run(hidden, 6), sessions.head.run(hidden, 6)]);
        expectClose(viaSubset.logprobs, viaFull.logprobs, 1e-6, 'whole-vocabulary subset vs full head');
      });
    });
  }

  it('int8 head log-probs stay within the quantization bound of the unquantized head', async () => {
    // Per row r of the table, |w - q·s_r| ≤ s_r/2 with s_r = max|w_r|/127, so a logit moves by at most
    // ||h||₁·s_r/2, and a log-probability (logit minus log-sum-exp) by at most twice the largest such
    // move: ||h||₁·max_r s_r. Anything beyond that bound (plus fp32 rounding) is a bug, not rounding.
    const sessions = await ModelSessions.open(exported('compact'), { ep: 'cpu', threads: 1 });
    try {
      const rows = 6;
      const hidden = new Rng(9).floats(rows * D, 2);
      const table = models.target.weights.readFloat32('model.embed_tokens.weight').data;
      const maxScale = table.reduce((max, w) => Math.max(max, Math.abs(w)), 0) / 127;
      const actual = await fullLogprobs(sessions.head, hidden, rows);
      const exact = ref.logSoftmaxRows(ref.hfLinear(hidden, rows, table, V, D), rows, V);
      let largest = 0;
      for (let r = 0; r < rows; r++) {
        const bound = hidden.subarray(r * D, (r + 1) * D).reduce((sum, h) => sum + Math.abs(h), 0) * maxScale;
        for (let v = 0; v < V; v++) {
          const error = Math.abs(actual[r * V + v] - exact[r * V + v]);
          largest = Math.max(largest, error);
          expect(error, `row ${r} token ${v}`).to.be.at.most(bound + 1e-4 * (1 + Math.abs(exact[r * V + v])));
        }
      }
      expect(largest, 'the head really is quantized').to.be.above(1e-4);
    } finally {
      await sessions.release();
    }
  });

  it('HeadWeights reads int8 rows with their scales as stored, and floats on request', () => {
    const head = HeadWeights.open(join(exported('compact'), 'lm_head.onnx'));
    expect([head.vocabSize, head.hiddenSize, head.storage, head.dtype]).to.deep.equal([V, D, 'int8', 'float32']);
    const ids = [96, 0, 41];
    const table = models.target.weights.readFloat32('model.embed_tokens.weight').data;
    const quantized = quantizeRowsInt8(Float32Array.from(ids.flatMap((id) => Array.from(table.subarray(id * D, (id + 1) * D)))), ids.length, D);
    const stored = head.readStoredRows(ids);
    expect(stored.kind).to.equal('int8');
    if (stored.kind !== 'int8') return;
    expect(Array.from(stored.values)).to.deep.equal(Array.from(quantized.values));
    expect(Array.from(stored.scales)).to.deep.equal(Array.from(quantized.scales));
    expect(Array.from(head.readRows(ids))).to.deep.equal(Array.from(dequantizeRowsInt8(quantized)));
    expect(head.readRows(ids, 'float16')).to.be.instanceOf(Uint16Array);

    const draftHead = HeadWeights.forModel(ModelFolder.open(exported('compact')), 'draft');
    expect(Array.from(draftHead.readRows(ids))).to.deep.equal(Array.from(head.readRows(ids)));
    expect(() => HeadWeights.open(join(exported('compact'), 'target.onnx'))).to.throw(UserError, /no initializer named lm_head\.weight \(float table\) or lm_head\.weight_quantized \(int8 table\)/);
  });

  it('dequantization is folded when onnxruntime loads the head, not run on every call', async () => {
    const optimized = join(root, 'lm_head.optimized.onnx');
    const session = await ort.InferenceSession.create(join(exported('compact'), 'lm_head.onnx'), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: optimized,
      logSeverityLevel: 3,
    });
    await session.release();
    const graph = decodeModel(readFileSync(optimized)).graph;
    expect(graph.node.map((n) => n.op_type)).to.deep.equal(['Gemm', 'LogSoftmax', 'TopK']);
    expect(graph.initializer.find((t) => t.dims.join() === `${V},${D}`)).to.have.property('data_type', 1);
  });
});
