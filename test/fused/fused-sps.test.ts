/**
 * The fused SpS loop (sps_loop: a whole draft-model speculative cycle inside one ONNX Loop) against the
 * host engine's sps method, token for token and cycle for cycle, on tiny exported models (fp32, fp16,
 * standard and fused operators) and on the demo models, CPU: γ 1 to 5, token budget, stop ids, context
 * length, a prompt longer than one chain chunk (the draft's first pending tokens are its last chunk),
 * chunked and unchunked runs. Sampling is checked for reproducibility here and for its distribution in
 * test/engine/sampling-distribution.test.ts.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type GenerationResult } from '../../src/engine/engine.js';
import { FusedSps } from '../../src/engine/fused/fused-sps.js';
import { EngineModel } from '../../src/engine/model.js';
import { DEMO_MODEL_DIR } from '../../src/engine/paths.js';
import { SeededRandom } from '../../src/engine/random.js';
import { loopBodyOf } from '../../src/model/fused/loop-ops.js';
import { buildSpsLoopModel } from '../../src/model/fused/sps-loop.js';
import { decodeModel } from '../../src/model/onnx/proto.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { deviceToHostCopies } from './helpers/host-copies.js';
import { caseOptions, expectFusedRunEqualsHost, expectReproducibleSampling, FUSED_MODEL_SETS, FUSED_VOCAB, int64InitializerValues, tinyFusedModelSets, type FusedCase } from './helpers/fused-cases.js';

const SHORT_PROMPT = [1, 5, 9, 3];
const random = new SeededRandom(29);
/** Longer than one chain chunk (256 tokens). */
const LONG_PROMPT = Array.from({ length: 300 }, () => Math.floor(random.uniform() * FUSED_VOCAB));

async function hostRun(model: EngineModel, gamma: number, c: FusedCase): Promise<GenerationResult> {
  const generator = await Generator.create(model, { method: 'sps', gamma, engine: 'host' });
  return generator.generate(c.prompt, caseOptions(c));
}

/** Same tokens and the same cycles as the host method, whole and in chunks. */
async function expectSame(model: EngineModel, fused: FusedSps, c: FusedCase, chunks: (number | undefined)[] = [undefined, 1, 5]): Promise<GenerationResult> {
  const reference = await hostRun(model, fused.gamma, c);
  for (const chunk of chunks) {
    const { result, label } = await expectFusedRunEqualsHost(fused, reference, c, chunk);
    expect(result.stats.cycles, `${label}: cycles`).to.equal(reference.stats.cycles);
    expect(result.stats.draftForwards, `${label}: draft forwards`).to.equal(reference.stats.draftForwards);
  }
  return reference;
}

describe('fused sps loop: tokens equal the host engine\'s sps (CPU)', function () {
  const dirs = tinyFusedModelSets('fr-spec-fused-sps-');

  for (const name of FUSED_MODEL_SETS) {
    describe(`tiny ${name} model`, () => {
      let model: EngineModel;
      before(async () => {
        model = await EngineModel.open(dirs[name], { ep: 'cpu', threads: 1 });
      });
      after(async () => model.release());

      for (const gamma of [1, 3, 5]) {
        it(`γ ${gamma}: budget, two tokens, a 300-token prompt, stop ids`, async () => {
          const fused = await FusedSps.create(model, { gamma, threads: 1 });
          try {
            const budget = await expectSame(model, fused, { name: 'budget', prompt: SHORT_PROMPT, maxNewTokens: 40 });
            expect(budget.stopReason).to.equal('max-new-tokens');
            // Some cycles accept drafts, or the test would not exercise the commit of accepted rows.
            expect(budget.stats.cycles).to.be.below(39);
            expect((await expectSame(model, fused, { name: 'two tokens', prompt: SHORT_PROMPT, maxNewTokens: 2 })).tokens).to.have.lengthOf(2);
            await expectSame(model, fused, { name: 'long prompt', prompt: LONG_PROMPT, maxNewTokens: 30 }, [undefined, 3]);
            for (const at of [0, 3, 11]) {
              const reference = await expectSame(model, fused, { name: `stop at ${at}`, prompt: SHORT_PROMPT, maxNewTokens: 30, stopIds: [budget.tokens[at]!, FUSED_VOCAB + 5] }, [undefined, 4]);
              expect(reference.stopReason).to.equal('stop-token');
            }
          } finally {
            await fused.release();
          }
        });
      }
    });
  }

  it('fused operators: caches carried head-major, extended by the Attention nodes and cut to the committed rows along axis 2', () => {
    const read = (file: string) => decodeModel(readFileSync(join(dirs['fp32, fused ops'], file)));
    const config = JSON.parse(readFileSync(join(dirs['fp32, fused ops'], 'config.json'), 'utf8'));
    const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: 'float32' as const });
    const gamma = 3;
    const loop = buildSpsLoopModel({ target: read('target.onnx'), draft: read('draft.onnx'), targetKv: kv(config.target.architecture), draftKv: kv(config.draft.architecture), gamma, maxPending: 8, contextLength: 64, vocabSize: config.vocab_size, draftVocabSize: config.draft.architecture.vocab_size });
    const body = loopBodyOf(loop);
    const producer = (value: string) => body.node.find((n) => n.output.includes(value))!;
    const attentions = body.node.filter((n) => n.op_type === 'Attention');
    expect(attentions).to.have.lengthOf(config.target.architecture.num_layers + gamma * config.draft.architecture.num_layers);
    for (const attention of attentions) {
      expect(attention.input, attention.name).to.have.lengthOf(6);
      for (const kOrV of attention.input.slice(1, 3)) expect(producer(kOrV).op_type, attention.name).to.not.equal('Concat');
    }
    // Body outputs: the condition, pending, generated, the target's caches, the draft's caches, the scans: each cache
    // the first rows of an Attention's present (the draft's through the chain's presents), cut along the row axis.
    const caches = 2 * (config.target.architecture.num_layers + config.draft.architecture.num_layers);
    for (const output of body.output.slice(3, 3 + caches)) {
      const slice = producer(output.name);
      expect(slice.op_type, output.name).to.equal('Slice');
      expect(producer(slice.input[0]!).op_type, output.name).to.equal('Attention');
      expect(int64InitializerValues(body, slice.input[3]!), `${output.name}: the Slice's axes`).to.deep.equal([2]);
    }
  });

  it('copies one value per cycle from the device to the host (n + 1); the commit reads every other shape from it', () => {
    for (const set of ['fp32', 'fp32, fused ops'] as const) {
      const read = (file: string) => decodeModel(readFileSync(join(dirs[set], file)));
      const config = JSON.parse(readFileSync(join(dirs[set], 'config.json'), 'utf8'));
      const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: 'float32' as const });
      for (const sampling of [undefined, 'plain'] as const) {
        const loop = buildSpsLoopModel({ target: read('target.onnx'), draft: read('draft.onnx'), targetKv: kv(config.target.architecture), draftKv: kv(config.draft.architecture), gamma: 3, maxPending: 8, contextLength: 64, vocabSize: config.vocab_size, draftVocabSize: config.draft.architecture.vocab_size, sampling });
        expect(deviceToHostCopies(loop, loopBodyOf(loop)), `${set}, ${sampling ?? 'greedy'}`).to.have.lengthOf(1);
      }
    }
  });

  it('stops at the context length like the host engine', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1, contextLength: 26 });
    const fused = await FusedSps.create(model, { gamma: 4, threads: 1 });
    try {
      const reference = await expectSame(model, fused, { name: 'context', prompt: SHORT_PROMPT, maxNewTokens: 100 });
      expect(reference.stopReason).to.equal('context-length');
      expect(reference.tokens).to.have.lengthOf(26 - SHORT_PROMPT.length);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('moves far fewer bytes per token than the host engine, and counts the forwards each cycle runs', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const fused = await FusedSps.create(model, { gamma: 4, threads: 1 });
    try {
      const c = { prompt: LONG_PROMPT, maxNewTokens: 40 };
      const reference = await hostRun(model, 4, { name: '', ...c });
      const whole = await fused.generate(c.prompt, c);
      expect(whole.stats.bytesPerToken).to.be.below(reference.stats.bytesPerToken / 2);
      expect(whole.stats.cycles).to.be.above(1);
      // Prefill: 2 target chunks; then one target forward per cycle. The draft: its first full chunk, then γ per cycle.
      expect(whole.stats.targetForwards).to.equal(2 + whole.stats.cycles);
      expect(whole.stats.draftForwards).to.equal(1 + 4 * whole.stats.cycles);
      expect(whole.stats.meanAcceptanceLength).to.equal(reference.stats.meanAcceptanceLength);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('samples reproducibly for a seed (top-p 1 and nucleus), within the token budget', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const fused = await FusedSps.create(model, { gamma: 3, threads: 1 });
    try {
      await expectReproducibleSampling(fused, SHORT_PROMPT);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('Generator runs sps on the fused loop with --engine fused', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    try {
      const generator = await Generator.create(model, { method: 'sps', gamma: 2, engine: 'fused' });
      expect(generator.engine).to.equal('fused');
      const reference = await hostRun(model, 2, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 20 });
      expect((await generator.generate(SHORT_PROMPT, { maxNewTokens: 20 })).tokens).to.deep.equal(reference.tokens);
      await generator.release();
    } finally {
      await model.release();
    }
  });
});

describe('fused sps loop with the target as its own draft: every draft accepted (CPU)', function () {
  let root: string;
  const models: Record<string, EngineModel> = {};
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-fused-sps-exact-'));
    for (const [name, options] of [['fp32', {}], ['fp16, fused ops', { dtype: 'fp16', ops: 'fused' }]] as const) {
      const set = await writeModelSet(join(root, name.replace(/\W+/g, '-')), { vocabSize: FUSED_VOCAB, attention: 0.5, seed: 3, draft: 'target', ...options });
      models[name] = await EngineModel.open(set.dir, { ep: 'cpu', threads: 1 });
    }
  });
  after(async () => {
    for (const model of Object.values(models)) await model.release();
    rmSync(root, { recursive: true, force: true });
  });

  for (const name of ['fp32', 'fp16, fused ops']) {
    it(`${name}: γ + 1 tokens per cycle, the draft fed the last accepted draft and the next token each cycle`, async () => {
      for (const gamma of [1, 4]) {
        const fused = await FusedSps.create(models[name]!, { gamma, threads: 1 });
        try {
          for (const prompt of [SHORT_PROMPT, LONG_PROMPT]) {
            const reference = await expectSame(models[name]!, fused, { name: `γ ${gamma}, ${prompt.length}-token prompt`, prompt, maxNewTokens: 31 }, [undefined, 2]);
            expect(reference.stats.cycles).to.equal(Math.ceil(30 / (gamma + 1)));
          }
        } finally {
          await fused.release();
        }
      }
    });
  }
});

describe('fused sps loop on the demo models (CPU)', function () {
  let model: EngineModel;
  before(async function () {
    if (!existsSync(join(DEMO_MODEL_DIR, 'config.json'))) this.skip();
    model = await EngineModel.open(DEMO_MODEL_DIR, { ep: 'cpu' });
  });
  after(async () => model?.release());

  it('equals the host engine token for token (EOS ids, a stop id), same cycles', async () => {
    const PROMPT = [128000, 791, 6864, 315, 9822, 374];
    const fused = await FusedSps.create(model, { gamma: 4 });
    try {
      const eos = model.config.eos_token_ids;
      const reference = await expectSame(model, fused, { name: 'demo budget + EOS', prompt: PROMPT, maxNewTokens: 48, stopIds: eos }, [undefined, 16]);
      expect(reference.stats.meanAcceptanceLength).to.be.above(1.5);
      await expectSame(model, fused, { name: 'demo stop id', prompt: PROMPT, maxNewTokens: 48, stopIds: [...eos, reference.tokens[9]!] }, [undefined]);
    } finally {
      await fused.release();
    }
  });
});
