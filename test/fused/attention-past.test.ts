/**
 * attentionReadingPasts (src/model/fused/attention-past.ts): a fused-operator decoder graph whose Attention nodes
 * take the caches as their own past inputs (head-major) instead of reading the graph's Concat of past and new rows.
 * Its outputs against the exported graph's on the same inputs (CPU), and which graphs it leaves alone.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../src/engine/random.js';
import { ATTENTION_PAST_IO, attentionReadingPasts } from '../../src/model/fused/attention-past.js';
import { TARGET_IO } from '../../src/model/llama-graph.js';
import { float32ToFloat16Bits } from '../../src/model/half-precision.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/model/onnx/proto.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { FUSED_VOCAB } from './helpers/fused-cases.js';

const SETS = {
  'fp32, fused ops': { ops: 'fused', seed: 3, hiddenSize: 64 },
  'fp16, fused ops': { ops: 'fused', seed: 5, dtype: 'fp16', hiddenSize: 64 },
  fp32: { ops: 'standard', seed: 3, hiddenSize: 64 },
} as const;

describe('attentionReadingPasts: Attention nodes that extend their caches themselves', function () {
  const dirs = {} as Record<keyof typeof SETS, string>;
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-attention-past-'));
    for (const [index, [name, set]] of Object.entries(SETS).entries()) dirs[name as keyof typeof SETS] = (await writeModelSet(join(root, `set-${index}`), { vocabSize: FUSED_VOCAB, attention: 0.6, ...set })).dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const read = (set: keyof typeof SETS) => {
    const config = JSON.parse(readFileSync(join(dirs[set], 'config.json'), 'utf8'));
    const a = config.target.architecture;
    const kv = { numLayers: a.num_layers as number, numKvHeads: a.num_kv_heads as number, headDim: a.head_dim as number, dtype: set.startsWith('fp16') ? ('float16' as const) : ('float32' as const) };
    return { model: decodeModel(readFileSync(join(dirs[set], 'target.onnx'))), kv };
  };

  it('feeds each layer\'s Attention its new rows and its past, drops the two Concats (and Reshapes) per layer, and declares the pasts head-major', () => {
    const { model, kv } = read('fp32, fused ops');
    const rewritten = attentionReadingPasts(model, kv)!;
    const count = (m: ModelProto, op: string) => m.graph.node.filter((n) => n.op_type === op).length;
    expect(count(model, 'Concat') - count(rewritten, 'Concat')).to.equal(2 * kv.numLayers);
    expect(rewritten.graph.node.length).to.be.at.most(model.graph.node.length - 2 * kv.numLayers);
    const attentions = rewritten.graph.node.filter((n) => n.op_type === 'Attention');
    expect(attentions).to.have.lengthOf(kv.numLayers);
    attentions.forEach((node, layer) => {
      expect(node.input.slice(4)).to.deep.equal([TARGET_IO.pastKey(layer), TARGET_IO.pastValue(layer)]);
      expect(node.output.slice(1)).to.deep.equal([ATTENTION_PAST_IO.presentKey(layer), ATTENTION_PAST_IO.presentValue(layer)]);
    });
    for (let layer = 0; layer < kv.numLayers; layer++) {
      const past = rewritten.graph.input.find((i) => i.name === TARGET_IO.pastKey(layer))!;
      expect(past.type.tensor_type.shape!.dim.map((d) => ('dim_value' in d ? d.dim_value : d.dim_param))).to.deep.equal([1, kv.numKvHeads, 'past_sequence', kv.headDim]);
      expect(rewritten.graph.node.some((n) => n.op_type === 'Reshape' && n.input[0] === TARGET_IO.pastKey(layer))).to.equal(false);
    }
    const inputs = new Set(rewritten.graph.node.flatMap((n) => n.input));
    expect(rewritten.graph.initializer.filter((init) => !inputs.has(init.name ?? '')).map((init) => init.name), 'no initializer left unread').to.deep.equal([]);
  });

  it('leaves a standard-operator graph (no Attention nodes) alone', () => {
    const { model, kv } = read('fp32');
    expect(attentionReadingPasts(model, kv)).to.equal(undefined);
  });

  for (const set of ['fp32, fused ops', 'fp16, fused ops'] as const) {
    it(`${set}: the same hidden states, argmax and new rows as the exported graph, and presents that are past then new rows`, async () => {
      const { model, kv } = read(set);
      const rewritten = attentionReadingPasts(model, kv)!;
      const fp16 = kv.dtype === 'float16';
      const presents = Array.from({ length: kv.numLayers }, (_, l) => [ATTENTION_PAST_IO.presentKey(l), ATTENTION_PAST_IO.presentValue(l)]).flat();
      const elemType = fp16 ? 10 : 1;
      const withPresents: ModelProto = { ...rewritten, graph: { ...rewritten.graph, output: [...rewritten.graph.output, ...presents.map((name) => ({ name, type: { tensor_type: { elem_type: elemType } } }))] } };
      const ort = loadOrt();
      const options = { externalData: [{ path: 'weights.data', data: readFileSync(join(dirs[set], 'weights.data')) }] } as Parameters<typeof ort.InferenceSession.create>[1];
      const [exported, extending] = [await ort.InferenceSession.create(readFileSync(join(dirs[set], 'target.onnx')), options), await ort.InferenceSession.create(encodeModel(withPresents), options)];
      try {
        const random = new SeededRandom(7);
        const [L, S, H, D] = [5, 3, kv.numKvHeads, kv.headDim];
        const shared: Record<string, InstanceType<typeof ort.Tensor>> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from([7n, 9n, 11n]), [1, S]),
          position_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 6n, 6n]), [1, S]),
        };
        // A small tree: row 1 hangs off row 0, row 2 off the root; every row sees the cache.
        const bias = new Float32Array(S * (L + S)).map((_, x) => {
          const [i, j] = [Math.floor(x / (L + S)), x % (L + S)];
          return j < L || j - L === i || (i === 1 && j === L) ? 0 : -1e9;
        });
        shared.attention_bias = new ort.Tensor('float32', bias, [1, 1, S, L + S]);
        const [tokenMajor, headMajor]: Record<string, InstanceType<typeof ort.Tensor>>[] = [{ ...shared }, { ...shared }];
        /** Each past as fed, row-major [L,H,D]: fp32 values, or fp16 bits. */
        const pastRows = new Map<string, ArrayLike<number>>();
        for (let l = 0; l < kv.numLayers; l++) {
          for (const name of [TARGET_IO.pastKey(l), TARGET_IO.pastValue(l)]) {
            const rows = Array.from({ length: L * H * D }, () => random.uniform() - 0.5);
            pastRows.set(name, fp16 ? float32ToFloat16Bits(Float32Array.from(rows)) : Float32Array.from(rows));
            const transposed = new Array<number>(L * H * D);
            for (let r = 0; r < L; r++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) transposed[(h * L + r) * D + d] = rows[(r * H + h) * D + d]!;
            const tensor = (values: number[], dims: number[]) => (fp16 ? new ort.Tensor('float16', float32ToFloat16Bits(Float32Array.from(values)), dims) : new ort.Tensor('float32', Float32Array.from(values), dims));
            tokenMajor[name] = tensor(rows, [1, L, H, D]);
            headMajor[name] = tensor(transposed, [1, H, L, D]);
          }
        }
        const [before, after] = [await exported.run(tokenMajor), await extending.run(headMajor)];
        for (const name of Object.keys(before)) {
          expect(after[name]!.dims, name).to.deep.equal(before[name]!.dims);
          expect(Array.from(after[name]!.data as ArrayLike<number | bigint>), name).to.deep.equal(Array.from(before[name]!.data as ArrayLike<number | bigint>));
        }
        // present = the past's rows, then the new rows (the exported graph's new_key / new_value), head-major.
        for (let l = 0; l < kv.numLayers; l++) {
          for (const [present, past, fresh] of [[ATTENTION_PAST_IO.presentKey(l), TARGET_IO.pastKey(l), TARGET_IO.newKey(l)], [ATTENTION_PAST_IO.presentValue(l), TARGET_IO.pastValue(l), TARGET_IO.newValue(l)]] as const) {
            expect(after[present]!.dims).to.deep.equal([1, H, L + S, D]);
            const data = after[present]!.data as ArrayLike<number>;
            const newRows = before[fresh]!.data as ArrayLike<number>;
            for (let h = 0; h < H; h++) {
              for (let r = 0; r < L + S; r++) {
                for (let d = 0; d < D; d++) {
                  const got = data[(h * (L + S) + r) * D + d]!;
                  const want = r < L ? pastRows.get(past)![(r * H + h) * D + d]! : newRows[((r - L) * H + h) * D + d]!;
                  if (got !== want) expect.fail(`${present}[0,${h},${r},${d}] = ${got}, expected ${want}`);
                }
              }
            }
          }
        }
      } finally {
        await exported.release();
        await extending.release();
      }
    });
  }
});

