/**
 * RoPE from tables computed once per run (src/model/fused/rotary-tables.ts): the rewrite of exported
 * fused-operator graphs, and that a forward through the rewritten graph computes the very bits the
 * exported graph computes (CPU, fp32 and fp16).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROPE_INV_FREQ, rotaryCaches } from '../../src/model/fused/gqa-decode.js';
import { createSessionFromModel } from '../../src/model/fused/loop-session.js';
import { rotaryFromTables, ROTARY_TABLE_IO } from '../../src/model/fused/rotary-tables.js';
import type { FloatData } from '../../src/model/float-data.js';
import { DecoderSession } from '../../src/model/graph-sessions.js';
import { declareDecoderInputs, TARGET_IO } from '../../src/model/llama-graph.js';
import { float32ToFloat16Bits } from '../../src/model/half-precision.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import type { FloatDType } from '../../src/model/onnx/dtypes.js';
import { InlinableGraph } from '../../src/model/onnx/inline.js';
import { decodeModel, type ModelProto } from '../../src/model/onnx/proto.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { sessionOptions } from '../../src/model/session.js';
import { SeededRandom } from '../../src/engine/random.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { FUSED_VOCAB } from './helpers/fused-cases.js';

const KV = { numLayers: 2, numKvHeads: 2, headDim: 8 } as const;
const SETS = {
  'fp32, fused ops': { ops: 'fused', seed: 7, dtype: 'fp32' as const, floatType: 'float32' as FloatDType },
  'fp16, fused ops': { ops: 'fused', seed: 9, dtype: 'fp16' as const, floatType: 'float16' as FloatDType },
  fp32: { ops: 'standard', seed: 7, dtype: 'fp32' as const, floatType: 'float32' as FloatDType },
} as const;
type SetName = keyof typeof SETS;

/** The exported target's interface around its rewritten graph, with the tables built in the same model (positions 0 … 63). */
function withTables(exported: ModelProto, dtype: FloatDType): ModelProto {
  const opset = exported.opset_import.find((o) => (o.domain ?? '') === '')?.version;
  const b = new GraphBuilder('tabled_target', { opsetVersion: opset, irVersion: exported.ir_version });
  const target = new InlinableGraph(rotaryFromTables(exported, dtype).graph, 'target', b, new Map());
  const inputs = declareDecoderInputs(b, KV.numLayers, KV, dtype);
  const tables = rotaryCaches(b, target.valueName({ prefix: '', inputs: {} }, ROPE_INV_FREQ), 64, dtype);
  const callInputs: Record<string, string> = {
    [TARGET_IO.inputIds]: inputs.inputIds,
    [TARGET_IO.positionIds]: inputs.positionIds,
    [TARGET_IO.attentionBias]: inputs.attentionBias,
    [ROTARY_TABLE_IO.cos]: tables.cos,
    [ROTARY_TABLE_IO.sin]: tables.sin,
  };
  for (let i = 0; i < KV.numLayers; i++) {
    callInputs[TARGET_IO.pastKey(i)] = inputs.pastKeys[i];
    callInputs[TARGET_IO.pastValue(i)] = inputs.pastValues[i];
  }
  target.declareOutputs(b, target.call(b, { prefix: '@step', inputs: callInputs }));
  b.pruneUnusedNodes();
  return b.toModel();
}

describe('fused loops: RoPE from tables computed once per run', function () {
  const dirs = Object.fromEntries(Object.keys(SETS).map((name) => [name, ''])) as Record<SetName, string>;
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-rotary-'));
    for (const [index, [name, set]] of Object.entries(SETS).entries()) {
      dirs[name as SetName] = (await writeModelSet(join(root, `set-${index}`), { vocabSize: FUSED_VOCAB, attention: 0.6, hiddenSize: 32, ...set })).dir;
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  const read = (set: SetName, file: string) => decodeModel(readFileSync(join(dirs[set], file)));

  it('rewires every RotaryEmbedding of the target and EAGLE graphs to the tables at the forward\'s position ids', () => {
    for (const set of ['fp32, fused ops', 'fp16, fused ops'] as const) {
      for (const file of ['target.onnx', 'eagle.onnx']) {
        const exported = read(set, file);
        const { graph, rewritten } = rotaryFromTables(exported, SETS[set].floatType);
        expect(rewritten, `${set} ${file}`).to.equal(true);
        const ropes = graph.graph.node.filter((n) => n.op_type === 'RotaryEmbedding');
        expect(ropes.length, `${set} ${file}`).to.equal(exported.graph.node.filter((n) => n.op_type === 'RotaryEmbedding').length).and.to.be.above(0);
        for (const rope of ropes) expect(rope.input.slice(1), `${set} ${file}`).to.deep.equal([ROTARY_TABLE_IO.cos, ROTARY_TABLE_IO.sin, TARGET_IO.positionIds]);
        expect(graph.graph.input.map((i) => i.name).slice(-2)).to.deep.equal([ROTARY_TABLE_IO.cos, ROTARY_TABLE_IO.sin]);
        // Nothing else changes: the same nodes, in the same order.
        expect(graph.graph.node.map((n) => n.name)).to.deep.equal(exported.graph.node.map((n) => n.name));
      }
    }
  });

  it('leaves a standard-operator graph as it is', () => {
    const exported = read('fp32', 'target.onnx');
    const { graph, rewritten } = rotaryFromTables(exported, 'float32');
    expect(rewritten).to.equal(false);
    expect(graph).to.equal(exported);
  });

  it('refuses, naming the node, tables it cannot prove are cos/sin of the position ids times inv_freq', () => {
    const exported = read('fp32, fused ops', 'target.onnx');
    const angles = exported.graph.node.find((n) => n.op_type === 'Mul' && n.input[1] === ROPE_INV_FREQ)!;
    const tampered = { ...exported, graph: { ...exported.graph, node: exported.graph.node.map((n) => (n === angles ? { ...n, input: [n.input[0], n.input[0]] } : n)) } };
    expect(() => rotaryFromTables(tampered, 'float32')).to.throw(/RotaryEmbedding.*per-forward RoPE table/);
    expect(() => rotaryFromTables(exported, 'float16'), 'fp32 tables read as fp16').to.throw(/per-forward RoPE table/);
  });

  for (const set of ['fp32, fused ops', 'fp16, fused ops'] as const) {
    it(`${set}: a forward over a cache computes the exported graph's bits (hidden state, argmax, new rows)`, async () => {
      const dtype = SETS[set].floatType;
      const ort = loadOrt();
      const options = sessionOptions('cpu', { threads: 1 });
      const exported = read(set, 'target.onnx');
      const hidden = 32;
      const sessionOf = async (model: ModelProto) => new DecoderSession(ort, await createSessionFromModel(ort, model, dirs[set], options), KV, dtype, hidden);
      const [plain, tabled] = [await sessionOf(exported), await sessionOf(withTables(exported, dtype))];
      try {
        const random = new SeededRandom(31);
        const past = 9;
        const width = KV.numKvHeads * KV.headDim;
        const values = () => Float32Array.from({ length: past * width }, () => random.uniform() - 0.5);
        const rows = (): FloatData => (dtype === 'float16' ? float32ToFloat16Bits(values()) : values());
        // Three tokens at tree-like positions (two siblings at one depth), each seeing the cache and itself.
        const bias = Float32Array.from({ length: 3 * (past + 3) }, (_, i) => (i % (past + 3) < past || i % (past + 3) === past + Math.floor(i / (past + 3)) ? 0 : -1e9));
        const step = { inputIds: [3, 11, 4], positionIds: [past, past + 1, past + 1], attentionBias: bias, pastKeys: [rows(), rows()], pastValues: [rows(), rows()] };
        const [a, b] = [await plain.run(step), await tabled.run(step)];
        expect(Array.from(b.argmax)).to.deep.equal(Array.from(a.argmax));
        expect(Array.from(b.hidden)).to.deep.equal(Array.from(a.hidden));
        for (let i = 0; i < KV.numLayers; i++) {
          expect(Array.from(b.newKeys[i]), `new_key_${i}`).to.deep.equal(Array.from(a.newKeys[i]));
          expect(Array.from(b.newValues[i]), `new_value_${i}`).to.deep.equal(Array.from(a.newValues[i]));
        }
      } finally {
        await Promise.all([plain.release(), tabled.release()]);
      }
    });
  }
});
