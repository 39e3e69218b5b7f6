/**
 * The fused device loop (vanilla_loop: greedy decoding inside one ONNX Loop) against the host
 * engine's vanilla method, token for token, on tiny exported models (fp32 and fp16) and on the demo
 * models, CPU: token budget, stop ids, context length, long prompts, chunked and unchunked runs.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Generator, type GenerationResult } from '../../src/engine/engine.js';
import { FusedVanilla } from '../../src/engine/fused/fused-vanilla.js';
import { EngineModel } from '../../src/engine/model.js';
import { DEMO_MODEL_DIR } from '../../src/engine/paths.js';
import { SeededRandom } from '../../src/engine/random.js';
import { cacheCarryOf } from '../../src/model/fused/loop-ops.js';
import { writeRowsInPlace } from '../../src/model/fused/reserved-cache.js';
import { buildVanillaLoopModel, externalDataLocations, LOOP_IO } from '../../src/model/fused/vanilla-loop.js';
import { decodeModel, OnnxAttributeType, OnnxDataLocation } from '../../src/model/onnx/proto.js';
import { caseOptions, expectFusedRunEqualsHost, expectReproducibleSampling, FUSED_MODEL_SETS, FUSED_VOCAB, tinyFusedModelSets, type FusedCase } from './helpers/fused-cases.js';

const VOCAB = FUSED_VOCAB;
const SHORT_PROMPT = [1, 5, 9, 3];
const random = new SeededRandom(17);
/** Longer than one prefill chunk (256 tokens). */
const LONG_PROMPT = Array.from({ length: 300 }, () => Math.floor(random.uniform() * VOCAB));
/** Whole generation in one run; chunks of 1, 3 and 16 tokens (caches come back between runs). */
const CHUNKS = [undefined, 1, 3, 16];

/** The host engine's vanilla decoding; `reserveRows`: its decode steps on reserved cache rows, as the reserving loop's. */
async function host(model: EngineModel, c: FusedCase, reserveRows = false): Promise<GenerationResult> {
  const generator = await Generator.create(model, { method: 'vanilla', engine: 'host', reserveRows });
  try {
    return await generator.generate(c.prompt, caseOptions(c));
  } finally {
    await generator.release();
  }
}

async function expectSame(model: EngineModel, fused: FusedVanilla, c: FusedCase, reserveRows = false): Promise<GenerationResult> {
  const reference = await host(model, c, reserveRows);
  for (const chunk of CHUNKS) {
    const { result, label } = await expectFusedRunEqualsHost(fused, reference, c, chunk);
    expect(result.stats.newTokens, label).to.equal(reference.stats.newTokens);
  }
  return reference;
}

describe('fused vanilla loop: tokens equal the host engine\'s vanilla decoding (CPU)', function () {
  const dirs = tinyFusedModelSets('fr-spec-fused-');

  it('builds a Loop over the target graph that references the folder\'s weights instead of copying them', () => {
    for (const set of ['fp32', 'fp32, fused ops'] as const) {
      const target = decodeModel(readFileSync(join(dirs[set], 'target.onnx')));
      const loop = buildVanillaLoopModel(target, { numLayers: 2, numKvHeads: 2, headDim: 8, dtype: 'float32' }, { maxPositions: 64, vocabSize: FUSED_VOCAB });
      const rank = set === 'fp32' ? 4 : 3;
      // Standard operators: the Loop alone; fused operators carry [1,L,kvH·D] rows, reshaped once before and after it.
      expect(loop.graph.node.filter((n) => n.op_type === 'Loop'), set).to.have.lengthOf(1);
      expect(loop.graph.node.filter((n) => n.op_type === 'Reshape'), set).to.have.lengthOf(rank === 3 ? 2 * 2 * 2 : 0);
      const body = loop.graph.node.find((n) => n.op_type === 'Loop')!.attribute.find((a) => a.name === 'body')!;
      expect(body.type).to.equal(OnnxAttributeType.GRAPH);
      expect(body.g!.node.length).to.be.above(target.graph.node.length - 2 * 2); // its new_key outputs' Reshapes are pruned
      // iteration, cond, token, then each layer's key and value: the cache length is the caches' own row count.
      expect(body.g!.input.map((i) => i.name)).to.have.lengthOf(3 + 2 * 2);
      expect(body.g!.input.find((i) => i.name === 'it/key_0')!.type.tensor_type.shape!.dim, set).to.have.lengthOf(rank);
      expect(body.g!.output.map((o) => o.name)).to.have.lengthOf(1 + 1 + 2 * 2 + 1);
      // Each cache grows by one row per step: the carried cache is the target graph's own concatenation of
      // past and new rows, so nothing copies the cache again, reshapes it per step or rewrites a padded buffer.
      const producer = (value: string) => {
        let node = body.g!.node.find((n) => n.output.includes(value))!;
        while (node.op_type === 'Identity') node = body.g!.node.find((n) => n.output.includes(node.input[0]))!;
        return node;
      };
      // Body outputs: the condition, the token, each layer's key and value, the token scan.
      const carriedKeys = [2, 4].map((index) => producer(body.g!.output[index].name));
      expect(carriedKeys.map((n) => n.op_type), set).to.deep.equal(['Concat', 'Concat']);
      // Computed values leave the body as they are: no Identity per cache (only the token, both carried and scanned, needs one).
      const outputs = new Set(body.g!.output.map((o) => o.name));
      expect(body.g!.node.filter((n) => n.op_type === 'Identity' && outputs.has(n.output[0])).map((n) => n.output[0]), set).to.deep.equal(['it/tokens_scan']);
      // Rows are concatenated as carried, with no Reshape of the cache per step (fused operators).
      expect(body.g!.node.filter((n) => n.op_type === 'Reshape' && n.input.some((i) => /^it\/(key|value)_/.test(i))), set).to.have.lengthOf(0);
      expect(body.g!.node.some((n) => n.op_type === 'Where' && n.input.some((i) => i.startsWith('it/key_')))).to.equal(false);
      expect(loop.graph.output.map((o) => o.name)[0]).to.equal(LOOP_IO.tokens);
      expect(loop.graph.output.map((o) => o.name)).to.include.members([LOOP_IO.finalKey(0), LOOP_IO.finalValue(1)]);
      expect(externalDataLocations(loop)).to.deep.equal(['weights.data']);
      const inline = loop.graph.initializer.filter((i) => i.data_location !== OnnxDataLocation.EXTERNAL);
      expect(inline.reduce((sum, i) => sum + (i.raw_data?.byteLength ?? 0), 0)).to.be.below(4096);
    }
  });

  it('with rows reserved, pads each cache once before the Loop and writes each step\'s row in place of the Concat', () => {
    for (const [set, rank] of [['fp32', 4], ['fp32, fused ops', 3]] as const) {
      const target = decodeModel(readFileSync(join(dirs[set], 'target.onnx')));
      const kv = { numLayers: 2, numKvHeads: 2, headDim: 8, dtype: 'float32' as const };
      const exact = buildVanillaLoopModel(target, kv, { maxPositions: 64, vocabSize: FUSED_VOCAB });
      const loop = buildVanillaLoopModel(target, kv, { maxPositions: 64, vocabSize: FUSED_VOCAB, reserveRows: true });
      expect(loop.graph.node.filter((n) => n.op_type === 'Pad'), set).to.have.lengthOf(2 * 2);
      expect(loop.graph.input.map((i) => i.name), set).to.include.members([LOOP_IO.cachedRows, LOOP_IO.reservePads, LOOP_IO.reservedRowIds]);
      expect(loop.graph.input.find((i) => i.name === LOOP_IO.reservePads)!.type.tensor_type.shape!.dim[0], set).to.deep.equal({ dim_value: 2 * rank });
      const bodyOf = (model: typeof loop) => model.graph.node.find((n) => n.op_type === 'Loop')!.attribute.find((a) => a.name === 'body')!.g!;
      const [body, exactBody] = [bodyOf(loop), bodyOf(exact)];
      const count = (graph: typeof body, op: string) => graph.node.filter((n) => n.op_type === op).length;
      // Each carried Concat became a Where (and the bias is a Where over the reserved columns, not a Concat of
      // the cache's length): about the same number of nodes per step.
      const carried = body.output.slice(2, 6).map((o) => body.node.find((n) => n.output.includes(o.name))!);
      expect(carried.map((n) => n.op_type), set).to.deep.equal(['Where', 'Where', 'Where', 'Where']);
      expect(count(body, 'Concat'), set).to.equal(count(exactBody, 'Concat') - 2 * 2 - 1);
      expect(Math.abs(body.node.length - exactBody.node.length), set).to.be.below(8);
      expect(() => writeRowsInPlace(target, new Map([['past_key_0', { rank: 4 as const }]]))).to.throw(/past_key_0 is not concatenated/);
    }
  });

  it('with rows reserved, the host engine runs exactly its decode steps on the reserved decode graph, padded to the loop\'s rows', async () => {
    for (const set of ['fp16', 'fp16, fused ops'] as const) {
      const model = await EngineModel.open(dirs[set], { ep: 'cpu', threads: 1 });
      try {
        const session = await model.reservedDecodeSession();
        const runReserved = session.runReserved.bind(session);
        const totals: number[] = [];
        session.runReserved = async (step, totalRows) => {
          totals.push(totalRows);
          return runReserved(step, totalRows);
        };
        const plain = await host(model, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 12 });
        const reserved = await host(model, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 12 }, true);
        expect(reserved.tokens, set).to.deep.equal(plain.tokens);
        // 4 prompt rows, 11 steps after the prompt's token: R = 4 + 11 for every step.
        expect(totals, set).to.deep.equal(new Array<number>(11).fill(SHORT_PROMPT.length + 11));
        totals.length = 0;
        // 257 tokens: a chunk of 256 and a lone last token over a full cache, which runs before the rows are set.
        await host(model, { name: '', prompt: LONG_PROMPT.slice(0, 257), maxNewTokens: 5 }, true);
        expect(totals, set).to.deep.equal(new Array<number>(4).fill(257 + 4));
        const refused = await runReserved({ inputIds: [1], positionIds: [0], attentionBias: Float32Array.of(0), pastKeys: [], pastValues: [] }, 0).then(() => undefined, (e: Error) => e);
        expect(refused?.message, set).to.match(/a step over 0 cached rows does not fit 0 reserved rows/);
      } finally {
        await model.release();
      }
    }
  });

  it('finds the concatenation of past and new K/V rows, and its layout, in both operator sets', () => {
    for (const [set, rank] of [['fp32', 4], ['fp32, fused ops', 3]] as const) {
      const target = decodeModel(readFileSync(join(dirs[set], 'target.onnx')));
      for (const past of ['past_key_0', 'past_value_1']) {
        const carry = cacheCarryOf(target, past);
        expect(carry.rank, set).to.equal(rank);
        const concat = target.graph.node.find((n) => n.output[0] === carry.concat)!;
        expect(concat.op_type, set).to.equal('Concat');
        const first = target.graph.node.find((n) => n.output.includes(concat.input[0]));
        expect(first === undefined ? concat.input[0] : first.input[0], set).to.equal(past);
      }
      expect(cacheCarryOf(target, 'input_ids'), set).to.deep.equal({ rank: 4 });
    }
  });

  for (const name of FUSED_MODEL_SETS) for (const reserveRows of [false, true]) {
    describe(`tiny ${name} model${reserveRows ? ', rows reserved (caches written in place)' : ''}`, () => {
      let model: EngineModel;
      let fused: FusedVanilla;
      before(async () => {
        model = await EngineModel.open(dirs[name], { ep: 'cpu', threads: 1 });
        fused = await FusedVanilla.create(model, { threads: 1, reserveRows });
      });
      after(async () => {
        await fused.release();
        await model.release();
      });

      it('token budget, a single new token, a 300-token prompt', async () => {
        expect((await expectSame(model, fused, { name: 'budget', prompt: SHORT_PROMPT, maxNewTokens: 40 }, reserveRows)).stopReason).to.equal('max-new-tokens');
        expect((await expectSame(model, fused, { name: 'one token', prompt: SHORT_PROMPT, maxNewTokens: 1 }, reserveRows)).tokens).to.have.lengthOf(1);
        expect((await expectSame(model, fused, { name: 'two tokens', prompt: SHORT_PROMPT, maxNewTokens: 2 }, reserveRows)).tokens).to.have.lengthOf(2);
        await expectSame(model, fused, { name: 'long prompt', prompt: LONG_PROMPT, maxNewTokens: 50 }, reserveRows);
      });

      it('stops on a stop id (mid-chunk, at a chunk end, as the first token)', async () => {
        const free = await host(model, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 40 });
        for (const at of [9, 4, 3, 0]) {
          const stop = free.tokens[at];
          const reference = await expectSame(model, fused, { name: `stop at ${at}`, prompt: SHORT_PROMPT, maxNewTokens: 40, stopIds: [stop, VOCAB + 5] }, reserveRows);
          expect(reference.stopReason).to.equal('stop-token');
        }
      });
    });
  }

  for (const reserveRows of [false, true]) it(`stops at the context length like the host engine${reserveRows ? ' (rows reserved)' : ''}`, async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1, contextLength: 24 });
    const fused = await FusedVanilla.create(model, { threads: 1, reserveRows });
    try {
      const reference = await expectSame(model, fused, { name: 'context', prompt: SHORT_PROMPT, maxNewTokens: 100 }, reserveRows);
      expect(reference.stopReason).to.equal('context-length');
      expect(reference.tokens).to.have.lengthOf(24 - SHORT_PROMPT.length);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('moves far fewer bytes per token than the host engine (whole generation in one run)', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const fused = await FusedVanilla.create(model, { threads: 1 });
    try {
      const c = { prompt: LONG_PROMPT, maxNewTokens: 40 };
      const reference = await host(model, { name: '', ...c });
      const whole = await fused.generate(c.prompt, c);
      const chunked = await fused.generate(c.prompt, { ...c, chunk: 8 });
      expect(whole.stats.bytesMoved).to.be.above(0);
      // Prefill costs the same in both; each host step feeds the whole cache and gets rows back.
      expect(whole.stats.bytesPerToken).to.be.below(reference.stats.bytesPerToken / 2);
      expect(chunked.stats.bytesPerToken).to.be.above(whole.stats.bytesPerToken);
      expect(whole.stats.targetForwards).to.equal(2 + 1);
      expect(chunked.stats.targetForwards).to.equal(2 + Math.ceil(39 / 8));
    } finally {
      await fused.release();
      await model.release();
    }
  });

  for (const reserveRows of [false, true]) it(`samples reproducibly for a seed (top-p 1 and nucleus), chunked or not${reserveRows ? ' (rows reserved)' : ''}`, async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const fused = await FusedVanilla.create(model, { threads: 1, reserveRows });
    try {
      await expectReproducibleSampling(fused, SHORT_PROMPT, { speculative: false });
    } finally {
      await fused.release();
      await model.release();
    }
  });
});

for (const reserveRows of [false, true]) describe(`fused vanilla loop on the demo models (CPU)${reserveRows ? ', rows reserved' : ''}`, function () {
  let model: EngineModel;
  let fused: FusedVanilla;
  before(async function () {
    if (!existsSync(join(DEMO_MODEL_DIR, 'config.json'))) this.skip();
    model = await EngineModel.open(DEMO_MODEL_DIR, { ep: 'cpu' });
    fused = await FusedVanilla.create(model, { reserveRows });
  });
  after(async () => {
    await fused?.release();
    await model?.release();
  });

  const PROMPT = [128000, 791, 6864, 315, 9822, 374];

  it('equals the host engine token for token: budget, EOS ids, a stop id', async () => {
    const eos = model.config.eos_token_ids;
    await expectSame(model, fused, { name: 'demo budget + EOS', prompt: PROMPT, maxNewTokens: 48, stopIds: eos }, reserveRows);
    const free = await host(model, { name: '', prompt: PROMPT, maxNewTokens: 20 });
    const reference = await expectSame(model, fused, { name: 'demo stop id', prompt: PROMPT, maxNewTokens: 48, stopIds: [...eos, free.tokens[6]] }, reserveRows);
    expect(reference.stopReason).to.equal('stop-token');
  });
});
