/**
 * The fused vanilla loop with GroupQueryAttention (src/model/fused/gqa-decode.ts): the rewrite of a
 * fused-operator target graph, the Loop it gives, and its tokens against the host engine's vanilla
 * decoding on tiny fused-operator models (CPU, fp32 and fp16).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routedDecoderGraph } from '../../src/engine/decoder.js';
import { Generator } from '../../src/engine/engine.js';
import { FusedVanilla } from '../../src/engine/fused/fused-vanilla.js';
import { EngineModel } from '../../src/engine/model.js';
import { SeededRandom } from '../../src/engine/random.js';
import { buildGqaDecodeModel, GQA_IO, gqaDecodeTarget } from '../../src/model/fused/gqa-decode.js';
import { loopBodyOf } from '../../src/model/fused/loop-ops.js';
import { buildVanillaLoopModel } from '../../src/model/fused/vanilla-loop.js';
import type { DecoderSession, DecoderStep } from '../../src/model/graph-sessions.js';
import { decodeModel, type GraphProto } from '../../src/model/onnx/proto.js';
import { UserError } from '../../src/util/errors.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { caseOptions, expectFusedRunEqualsHost, FUSED_VOCAB, type FusedCase } from './helpers/fused-cases.js';

/** GroupQueryAttention's kernels need a head size that is a multiple of 16: 64 wide, 4 heads. */
const HIDDEN = 64;
const KV = { numLayers: 2, numKvHeads: 2, headDim: 16, dtype: 'float32' } as const;
const SETS = {
  'fp32, fused ops': { ops: 'fused', seed: 3, hiddenSize: HIDDEN },
  'fp16, fused ops': { ops: 'fused', seed: 5, dtype: 'fp16', hiddenSize: HIDDEN },
  fp32: { ops: 'standard', seed: 3, hiddenSize: HIDDEN },
  'fp32, fused ops, head size 8': { ops: 'fused', seed: 3, hiddenSize: 32 },
} as const;
const SHORT_PROMPT = [1, 5, 9, 3];
const random = new SeededRandom(23);
const LONG_PROMPT = Array.from({ length: 300 }, () => Math.floor(random.uniform() * FUSED_VOCAB));

const count = (graph: GraphProto, opType: string) => graph.node.filter((n) => n.op_type === opType).length;

describe('fused vanilla loop with GroupQueryAttention', function () {
  const dirs = Object.fromEntries(Object.keys(SETS).map((name) => [name, ''])) as Record<keyof typeof SETS, string>;
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-gqa-'));
    for (const [index, [name, set]] of Object.entries(SETS).entries()) {
      dirs[name as keyof typeof SETS] = (await writeModelSet(join(root, `set-${index}`), { vocabSize: FUSED_VOCAB, attention: 0.6, ...set })).dir;
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  const target = (set: keyof typeof dirs) => decodeModel(readFileSync(join(dirs[set], 'target.onnx')));

  it('replaces each layer\'s Attention by one GroupQueryAttention on the packed projection and the past', () => {
    const exported = target('fp32, fused ops');
    const rewritten = gqaDecodeTarget(exported, KV);
    expect(count(rewritten.graph, 'Attention')).to.equal(0);
    const gqa = rewritten.graph.node.filter((n) => n.op_type === 'GroupQueryAttention');
    expect(gqa).to.have.lengthOf(KV.numLayers);
    gqa.forEach((node, layer) => {
      expect(node.domain).to.equal('com.microsoft');
      const packed = exported.graph.node.find((n) => n.output.includes(node.input[0]))!;
      expect(packed.op_type, 'the q/k/v projection').to.equal('MatMul');
      expect(node.input.slice(1, 3)).to.deep.equal(['', '']);
      // Each past is fed one row longer (Pad), the present's size: the kernel extends its cache in place.
      node.input.slice(3, 5).forEach((past, i) => {
        const pad = rewritten.graph.node.find((n) => n.output.includes(past))!;
        expect(pad.op_type).to.equal('Pad');
        expect(pad.input[0]).to.equal(i === 0 ? `past_key_${layer}` : `past_value_${layer}`);
        expect(rewritten.graph.initializer.find((t) => t.name === pad.input[1])?.int64_data).to.deep.equal([0, 0, 0, 0, 0, 0, 1, 0]);
      });
      expect(node.output.slice(1)).to.deep.equal([GQA_IO.presentKey(layer), GQA_IO.presentValue(layer)]);
      const attribute = (name: string) => Number(node.attribute.find((a) => a.name === name)?.i);
      expect([attribute('do_rotary'), attribute('rotary_interleaved')]).to.deep.equal([1, 0]);
    });
    // The output projection reads what the Attention node wrote.
    const attentionOutputs = exported.graph.node.filter((n) => n.op_type === 'Attention').map((n) => n.output[0]);
    expect(gqa.map((n) => n.output[0])).to.deep.equal(attentionOutputs);
  });

  it('refuses a standard-operator graph, naming the export option', () => {
    expect(() => gqaDecodeTarget(target('fp32'), KV)).to.throw(/--ops fused/);
  });

  it('carries head-major caches that GroupQueryAttention extends, with 3 fewer nodes per layer per step', () => {
    const exported = target('fp32, fused ops');
    const plain = loopBodyOf(buildVanillaLoopModel(exported, KV, { maxPositions: 64, vocabSize: FUSED_VOCAB }));
    const loop = buildVanillaLoopModel(exported, KV, { attention: 'gqa', maxPositions: 64, vocabSize: FUSED_VOCAB });
    const body = loopBodyOf(loop);
    for (const op of ['Attention', 'RotaryEmbedding']) expect(count(body, op), op).to.equal(0);
    expect(count(body, 'Split'), 'the q/k/v Split goes into GroupQueryAttention (gate and up are two MatMuls)').to.equal(0);
    expect(body.node.filter((n) => n.op_type === 'Concat' && n.input.some((i) => /^it\/(key|value)_/.test(i)))).to.have.lengthOf(0);
    expect(count(body, 'GroupQueryAttention')).to.equal(KV.numLayers);
    // Split, two RotaryEmbedding, two Concat and Attention become GroupQueryAttention and the Pad of each past;
    // the step's mask goes, and the GroupQueryAttention lengths come (Cast ×2, Add). (Both loops read RoPE tables
    // computed once per run.)
    expect(count(body, 'Pad')).to.equal(2 * KV.numLayers);
    expect(plain.node.length - body.node.length).to.be.at.least(3 * KV.numLayers);
    const producer = (value: string) => {
      let node = body.node.find((n) => n.output.includes(value))!;
      while (node.op_type === 'Identity') node = body.node.find((n) => n.output.includes(node.input[0]))!;
      return node;
    };
    // Body outputs: the condition, the token, each layer's key and value, the token scan.
    for (const output of body.output.slice(2, 2 + 2 * KV.numLayers)) {
      expect(producer(output.name).op_type).to.equal('GroupQueryAttention');
      expect(output.type.tensor_type.shape!.dim.map((d) => ('dim_value' in d ? d.dim_value : d.dim_param))).to.deep.equal([1, 2, 'cached_rows', 16]);
    }
    // The outer graph converts the contract's [1,L,kvH,D] caches to head-major and back, once per run.
    expect(count(loop.graph, 'Transpose')).to.equal(2 * 2 * KV.numLayers);
    expect(() => buildVanillaLoopModel(exported, KV, { attention: 'gqa', maxPositions: 0, vocabSize: FUSED_VOCAB })).to.throw(/maxPositions/);
  });

  it('the host engine\'s decode model: the target\'s inputs and outputs, and its numbers for a one-token step', async () => {
    const exported = target('fp32, fused ops');
    const decode = buildGqaDecodeModel(exported, KV, 64);
    expect(decode.graph.input.map((i) => i.name)).to.deep.equal(exported.graph.input.map((i) => i.name));
    expect(decode.graph.output.map((o) => o.name).sort()).to.deep.equal(exported.graph.output.map((o) => o.name).sort());
    expect(count(decode.graph, 'GroupQueryAttention')).to.equal(KV.numLayers);
    expect(count(decode.graph, 'Attention')).to.equal(0);
    // One decode step over 5 cached rows, on both graphs (CPU, fp32): the same hidden state, argmax and new rows.
    const model = await EngineModel.open(dirs['fp32, fused ops'], { ep: 'cpu', threads: 1 });
    try {
      const gqa = await model.gqaDecodeSession();
      const past = 5;
      const width = KV.numKvHeads * KV.headDim;
      const rows = () => Float32Array.from({ length: past * width }, () => random.uniform() - 0.5);
      const step = { inputIds: [7], positionIds: [past], attentionBias: new Float32Array(past + 1), pastKeys: [rows(), rows()], pastValues: [rows(), rows()] };
      const [viaGraph, viaGqa] = [await model.sessions.target.run(step), await gqa.run(step)];
      expect(Array.from(viaGqa.argmax)).to.deep.equal(Array.from(viaGraph.argmax));
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
        expect(a.length, what).to.equal(b.length);
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}]`).to.be.below(1e-4);
      };
      close(viaGqa.hidden, viaGraph.hidden, 'hidden');
      for (let i = 0; i < KV.numLayers; i++) {
        close(viaGqa.newKeys[i], viaGraph.newKeys[i], `new_key_${i}`);
        close(viaGqa.newValues[i], viaGraph.newValues[i], `new_value_${i}`);
      }
    } finally {
      await model.release();
    }
  });

  it('the host engine routes to it exactly the one-token steps that see every row of a non-empty cache', async () => {
    const calls: string[] = [];
    const session = (name: string) =>
      ({
        kv: { numLayers: 0, numKvHeads: 1, headDim: 16 },
        dtype: 'float32',
        hiddenSize: 4,
        run: async () => {
          calls.push(name);
          return { hidden: new Float32Array(4), argmax: new BigInt64Array(1), newKeys: [], newValues: [] };
        },
      }) as unknown as DecoderSession;
    const graph = routedDecoderGraph(session('target'), session('gqa'));
    const step = (tokens: number, bias: number[]): DecoderStep => ({ inputIds: new Array(tokens).fill(1), positionIds: new Array(tokens).fill(3), attentionBias: Float32Array.from(bias), pastKeys: [], pastValues: [] });
    await graph.run(step(1, [0, 0, 0, 0]));
    await graph.run(step(1, [0, -1e9, 0, 0]));
    await graph.run(step(2, [0, 0, 0, 0, 0, 0, 0, 0]));
    await graph.run(step(1, [0])); // the first forward: no cache
    await graph.run(step(1, [0, 0]));
    expect(calls).to.deep.equal(['gqa', 'target', 'target', 'target', 'gqa']);
  });

  for (const set of ['fp32, fused ops', 'fp16, fused ops'] as const) {
    describe(`tiny ${set} model: the fused loop's tokens equal the host engine's, both with GroupQueryAttention`, () => {
      let model: EngineModel;
      let fused: FusedVanilla;
      let reserved: FusedVanilla;
      let host: Generator;
      before(async () => {
        model = await EngineModel.open(dirs[set], { ep: 'cpu', threads: 1 });
        fused = await FusedVanilla.create(model, { threads: 1, attention: 'gqa' });
        reserved = await FusedVanilla.create(model, { threads: 1, attention: 'gqa', reserveRows: true });
        host = await Generator.create(model, { method: 'vanilla', engine: 'host', decodeAttention: 'gqa' });
      });
      after(async () => {
        await fused.release();
        await reserved.release();
        await host.release();
        await model.release();
      });

      it('budget, one token, a one-token and a 300-token prompt, stop ids; whole runs and chunks; rows reserved or not', async () => {
        const free = await host.generate(SHORT_PROMPT, { maxNewTokens: 40 });
        const cases: FusedCase[] = [
          { name: 'budget', prompt: SHORT_PROMPT, maxNewTokens: 40 },
          { name: 'one token', prompt: SHORT_PROMPT, maxNewTokens: 1 },
          { name: 'one-token prompt', prompt: [5], maxNewTokens: 20 },
          { name: 'long prompt', prompt: LONG_PROMPT, maxNewTokens: 50 },
          { name: 'stop id', prompt: SHORT_PROMPT, maxNewTokens: 40, stopIds: [free.tokens[7]] },
        ];
        for (const c of cases) {
          const reference = await host.generate(c.prompt, caseOptions(c));
          for (const chunk of [undefined, 1, 6]) {
            await expectFusedRunEqualsHost(fused, reference, c, chunk);
            await expectFusedRunEqualsHost(reserved, reference, c, chunk);
          }
        }
      });

      it('the host engine runs its decode steps, and both engines a prompt\'s lone last token, on the GroupQueryAttention graph', async () => {
        const decode = await model.gqaDecodeSession();
        const run = decode.run.bind(decode);
        let runs = 0;
        decode.run = async (step) => {
          runs++;
          return run(step);
        };
        try {
          await host.generate(SHORT_PROMPT, { maxNewTokens: 10 });
          expect(runs, 'host: 9 decode steps after the prompt').to.equal(9);
          // 257 tokens: a chunk of 256, then one token over a full cache (CHAIN_CHUNK).
          const prompt = LONG_PROMPT.slice(0, 257);
          runs = 0;
          await host.generate(prompt, { maxNewTokens: 10 });
          expect(runs, 'host: the prompt\'s last token and 9 steps').to.equal(10);
          runs = 0;
          await fused.generate(prompt, { maxNewTokens: 10 });
          expect(runs, 'fused: the prompt\'s last token (the steps run in the Loop)').to.equal(1);
          runs = 0;
          await host.generate([5], { maxNewTokens: 10 });
          expect(runs, 'host: a one-token prompt is a first forward, on the target graph').to.equal(9);
        } finally {
          decode.run = run;
        }
      });

      it('samples the same tokens for a seed', async () => {
        const sampling = { temperature: 0.9, topP: 0.8 };
        const reference = await host.generate(SHORT_PROMPT, { maxNewTokens: 24, sampling, seed: 7 });
        const result = await fused.generate(SHORT_PROMPT, { maxNewTokens: 24, sampling, seed: 7, chunk: 5 });
        expect(result.tokens).to.deep.equal(reference.tokens);
      });
    });
  }

  it('generate settings: vanilla only, fused-operator models only, head sizes the CPU kernel takes', async () => {
    const fusedModel = await EngineModel.open(dirs['fp32, fused ops'], { ep: 'cpu', threads: 1 });
    const standardModel = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    try {
      const generator = await Generator.create(fusedModel, { method: 'vanilla', engine: 'fused', decodeAttention: 'gqa' });
      expect(generator.engine).to.equal('fused');
      await generator.release();
      const refused = async (model: EngineModel, settings: Parameters<typeof Generator.create>[1], message: RegExp) => {
        const error = await Generator.create(model, settings).then(() => undefined, (e: unknown) => e);
        expect(error, String(message)).to.be.instanceOf(UserError);
        expect((error as Error).message).to.match(message);
      };
      const onHost = await Generator.create(fusedModel, { method: 'vanilla', engine: 'host', decodeAttention: 'gqa' });
      expect(onHost.engine).to.equal('host');
      await onHost.release();
      await refused(fusedModel, { method: 'eagle2', engine: 'fused', decodeAttention: 'gqa' }, /applies to --method vanilla/);
      await refused(standardModel, { method: 'vanilla', engine: 'fused', decodeAttention: 'gqa' }, /--ops fused/);
      const narrowHeads = await EngineModel.open(dirs['fp32, fused ops, head size 8'], { ep: 'cpu', threads: 1 });
      try {
        await refused(narrowHeads, { method: 'vanilla', engine: 'fused', decodeAttention: 'gqa' }, /multiple of 16 .* this model's is 8/);
      } finally {
        await narrowHeads.release();
      }
    } finally {
      await fusedModel.release();
      await standardModel.release();
    }
  });
});
