/**
 * The fused EAGLE-2 / FR-Spec loop (eagle_loop: a whole speculative iteration inside one ONNX Loop)
 * against the host engine's eagle2 / fr-spec methods, token for token, on tiny exported models
 * (fp32, fp16) and on the demo models, CPU: tree shapes (depth 1, more tokens than candidates, the
 * GPU default), token budget, stop ids, context length, long prompts, chunked and unchunked runs.
 * With fp32 weights the drafted trees match too, so the cycles (τ) equal the host's. Sampling in the loop
 * is checked for reproducibility here and for its distribution in test/engine/sampling-distribution.test.ts.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Generator, type GenerationResult } from '../../src/engine/engine.js';
import { FusedEagle } from '../../src/engine/fused/fused-eagle.js';
import type { TreeShape } from '../../src/engine/methods/eagle.js';
import { EngineModel } from '../../src/engine/model.js';
import { DEMO_MODEL_DIR } from '../../src/engine/paths.js';
import { SeededRandom } from '../../src/engine/random.js';
import { loadVocabMap } from '../../src/engine/vocab-map.js';
import { buildEagleLoopModel, candidateCount, verifiedTokens } from '../../src/model/fused/eagle-loop.js';
import { loopBodyOf } from '../../src/model/fused/loop-ops.js';
import { externalDataLocations } from '../../src/model/fused/vanilla-loop.js';
import { decodeModel, OnnxDataLocation } from '../../src/model/onnx/proto.js';
import { deviceToHostCopies } from './helpers/host-copies.js';
import { caseOptions, expectFusedRunEqualsHost, expectReproducibleSampling, FUSED_MODEL_SETS, FUSED_VOCAB, int64InitializerValues, tinyFusedModelSets, type FusedCase } from './helpers/fused-cases.js';

const VOCAB = FUSED_VOCAB;
const SHORT_PROMPT = [1, 5, 9, 3];
const random = new SeededRandom(23);
/** Longer than one prefill chunk (256 tokens). */
const LONG_PROMPT = Array.from({ length: 300 }, () => Math.floor(random.uniform() * VOCAB));
/** A frequent-token subset for FR-Spec on the tiny vocabulary (every other id, plus the low ones). */
const SUBSET = [...new Set([0, 1, 2, 3, 4, 5, ...Array.from({ length: VOCAB / 2 }, (_, i) => 2 * i)])];

async function hostRun(model: EngineModel, tree: TreeShape, subset: number[] | undefined, c: FusedCase): Promise<GenerationResult> {
  const generator = await Generator.create(model, { method: subset ? 'fr-spec' : 'eagle2', tree, vocabSubset: subset });
  return generator.generate(c.prompt, caseOptions(c));
}

/** Same tokens, and the same cycles: the loop drafts the host's trees (fp16 too, since its forwards have the host's shapes). */
async function expectSame(model: EngineModel, fused: FusedEagle, tree: TreeShape, subset: number[] | undefined, c: FusedCase, chunks: (number | undefined)[] = [undefined, 1, 5]): Promise<GenerationResult> {
  const reference = await hostRun(model, tree, subset, c);
  for (const chunk of chunks) {
    const { result, label } = await expectFusedRunEqualsHost(fused, reference, c, chunk);
    expect(result.stats.cycles, `${label}: cycles`).to.equal(reference.stats.cycles);
  }
  return reference;
}

describe('fused eagle loop: tokens equal the host engine\'s eagle2 / fr-spec (CPU)', function () {
  const dirs = tinyFusedModelSets('fr-spec-fused-eagle-');

  it('counts candidates and verified tokens as the host tree does', () => {
    expect(candidateCount({ depth: 6, topK: 10, tokens: 60 })).to.equal(10 + 5 * 100);
    expect(verifiedTokens({ depth: 6, topK: 10, tokens: 60 })).to.equal(60);
    expect(verifiedTokens({ depth: 1, topK: 3, tokens: 60 })).to.equal(4);
    expect(verifiedTokens({ depth: 2, topK: 2, tokens: 50 })).to.equal(1 + 2 + 4);
  });

  it('builds one Loop whose weights point into weights.data, each stored tensor adopted once', () => {
    const read = (file: string) => decodeModel(readFileSync(join(dirs.fp32, file)));
    const target = read('target.onnx');
    const eagle = read('eagle.onnx');
    const config = JSON.parse(readFileSync(join(dirs.fp32, 'config.json'), 'utf8'));
    const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: 'float32' as const });
    const tree = { depth: 3, topK: 3, tokens: 8 };
    const loop = buildEagleLoopModel({ target, eagle, head: read('lm_head.onnx'), targetKv: kv(config.target.architecture), eagleKv: kv(config.eagle.architecture), hiddenSize: config.hidden_size, tree, contextLength: 64, vocabSize: config.vocab_size, headVocabSize: config.lm_head.vocab_size });
    expect(loop.graph.node.map((n) => n.op_type)).to.deep.equal(['Loop']);
    expect(externalDataLocations(loop)).to.deep.equal(['weights.data']);
    const external = loop.graph.initializer.filter((i) => i.data_location === OnnxDataLocation.EXTERNAL);
    const ranges = external.map((i) => JSON.stringify(i.external_data));
    expect(new Set(ranges).size, 'no external range twice').to.equal(ranges.length);
    // The EAGLE graph reads the target's embedding (and the head the tied table): one initializer serves all.
    const stored = [target, eagle, read('lm_head.onnx')].flatMap((m) => m.graph.initializer.filter((i) => i.data_location === OnnxDataLocation.EXTERNAL));
    expect(stored.length).to.be.above(external.length);
    expect(external.length).to.equal(new Set(stored.map((i) => JSON.stringify(i.external_data))).size);
  });

  it('fused operators: each Attention extends its carried head-major cache itself, with no Concat or Reshape of a cache', () => {
    const read = (file: string) => decodeModel(readFileSync(join(dirs['fp32, fused ops'], file)));
    const config = JSON.parse(readFileSync(join(dirs['fp32, fused ops'], 'config.json'), 'utf8'));
    const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: 'float32' as const });
    const targetLayers = config.target.architecture.num_layers;
    const eagleLayers = config.eagle.architecture.num_layers;
    const depth = 3;
    const loop = buildEagleLoopModel({ target: read('target.onnx'), eagle: read('eagle.onnx'), head: read('lm_head.onnx'), targetKv: kv(config.target.architecture), eagleKv: kv(config.eagle.architecture), hiddenSize: config.hidden_size, tree: { depth, topK: 3, tokens: 8 }, contextLength: 64, vocabSize: config.vocab_size, headVocabSize: config.lm_head.vocab_size });
    const body = loopBodyOf(loop);
    const producer = (value: string) => body.node.find((n) => n.output.includes(value))!;
    const attentions = body.node.filter((n) => n.op_type === 'Attention');
    // The verify's layers, and the EAGLE layer's in each of the depth − 1 expansions and the catch-up.
    expect(attentions).to.have.lengthOf(targetLayers + eagleLayers * depth);
    for (const attention of attentions) {
      expect(attention.input, attention.name).to.have.lengthOf(6);
      expect(attention.output, attention.name).to.have.lengthOf(3);
      for (const kOrV of attention.input.slice(1, 3)) expect(producer(kOrV).op_type, `${attention.name} reads new rows, not a concatenation`).to.not.equal('Concat');
    }
    const cacheReaders = (pattern: RegExp) => body.node.filter((n) => n.input.some((i) => pattern.test(i)));
    const targetCache = /^it\/target_(key|value)_\d+$/;
    // The carried target caches are read by the verify's Attention nodes (as their pasts) and one Shape (L, the rows
    // along axis 2), nothing else.
    expect(cacheReaders(targetCache).map((n) => n.op_type)).to.deep.equal(['Shape', ...new Array<string>(targetLayers).fill('Attention')]);
    const rows = cacheReaders(targetCache)[0]!;
    expect([rows.attribute.find((a) => a.name === 'start')?.i, rows.attribute.find((a) => a.name === 'end')?.i]).to.deep.equal([2, 3]);
    for (const n of cacheReaders(targetCache).slice(1)) expect(n.input.slice(4).every((i) => targetCache.test(i)), n.name).to.equal(true);
    // The EAGLE caches: the first expansion's and the catch-up's Attention nodes; the second expansion's past is the
    // first's present less its padding rows (k = 3 fed as 4 rows), one Slice along the row axis (2, head-major).
    expect(cacheReaders(/^it\/eagle_(key|value)_\d+$/).map((n) => n.op_type)).to.deep.equal(new Array<string>(2 * eagleLayers).fill('Attention'));
    const second = attentions.filter((n) => n.name.startsWith('@eagle_expand_1/'));
    expect(second).to.have.lengthOf(eagleLayers);
    for (const attention of second) {
      for (const past of attention.input.slice(4)) {
        const slice = producer(past);
        expect(slice.op_type).to.equal('Slice');
        expect(producer(slice.input[0]!).name).to.match(/^@eagle_expand_0\//);
        expect(producer(slice.input[0]!).op_type).to.equal('Attention');
        expect(int64InitializerValues(body, slice.input[3]!), 'the Slice\'s axes').to.deep.equal([2]);
      }
    }
    // Body outputs: the condition, root token, root output, generated count, the target's caches (the verify's
    // presents, Gathered along the row axis), the head's caches (a Slice of the catch-up's presents), the scans.
    for (const output of body.output.slice(4, 4 + 2 * targetLayers)) {
      const gather = producer(output.name);
      expect(gather.op_type).to.equal('Gather');
      expect(producer(gather.input[0]!).op_type).to.equal('Attention');
      expect(gather.attribute.find((a) => a.name === 'axis')?.i).to.equal(2);
    }
    const first = 4 + 2 * targetLayers;
    for (const output of body.output.slice(first, first + 2 * eagleLayers)) {
      const slice = producer(output.name);
      expect(slice.op_type).to.equal('Slice');
      expect(producer(slice.input[0]).op_type).to.equal('Attention');
      expect(slice.input[0]).to.match(/^@eagle_catch_up\//);
    }
    // The outer graph converts the contract's [1,L,kvH,D] caches to head-major and back, once per run.
    expect(loop.graph.node.filter((n) => n.op_type === 'Transpose')).to.have.lengthOf(2 * 2 * (targetLayers + eagleLayers));
  });

  it('copies one value per cycle from the device to the host: n, for the committed path; later shapes read it from that path', () => {
    for (const set of ['fp32', 'fp32, fused ops'] as const) {
      const read = (file: string) => decodeModel(readFileSync(join(dirs[set], file)));
      const config = JSON.parse(readFileSync(join(dirs[set], 'config.json'), 'utf8'));
      const kv = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: 'float32' as const });
      const loop = buildEagleLoopModel({ target: read('target.onnx'), eagle: read('eagle.onnx'), head: read('lm_head.onnx'), targetKv: kv(config.target.architecture), eagleKv: kv(config.eagle.architecture), hiddenSize: config.hidden_size, tree: { depth: 3, topK: 3, tokens: 8 }, contextLength: 64, vocabSize: config.vocab_size, headVocabSize: config.lm_head.vocab_size });
      const body = loopBodyOf(loop);
      const copies = deviceToHostCopies(loop, body);
      expect(copies, set).to.have.lengthOf(1);
      const slice = body.node.find((n) => n.op_type === 'Slice' && n.input[2] === copies[0])!;
      expect(slice, `${set}: the copied value ends the committed path's Slice`).to.not.equal(undefined);
    }
  });

  for (const name of FUSED_MODEL_SETS) {
    describe(`tiny ${name} model`, () => {
      let model: EngineModel;
      before(async () => {
        model = await EngineModel.open(dirs[name], { ep: 'cpu', threads: 1 });
      });
      after(async () => model.release());

      const trees: [string, TreeShape][] = [
        ['4/4/16', { depth: 4, topK: 4, tokens: 16 }],
        ['6/10/60 (the GPU default)', { depth: 6, topK: 10, tokens: 60 }],
        ['depth 1', { depth: 1, topK: 3, tokens: 4 }],
        ['more tokens than candidates', { depth: 2, topK: 2, tokens: 50 }],
      ];
      for (const [label, tree] of trees) {
        for (const subset of [undefined, SUBSET]) {
          it(`${subset ? 'fr-spec' : 'eagle2'}, tree ${label}: budget, a 300-token prompt, stop ids`, async () => {
            const fused = await FusedEagle.create(model, { tree, vocabSubset: subset, threads: 1 });
            try {
              expect((await expectSame(model, fused, tree, subset, { name: 'budget', prompt: SHORT_PROMPT, maxNewTokens: 40 })).stopReason).to.equal('max-new-tokens');
              expect((await expectSame(model, fused, tree, subset, { name: 'two tokens', prompt: SHORT_PROMPT, maxNewTokens: 2 })).tokens).to.have.lengthOf(2);
              await expectSame(model, fused, tree, subset, { name: 'long prompt', prompt: LONG_PROMPT, maxNewTokens: 30 }, [undefined]);
              const free = await hostRun(model, tree, subset, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 30 });
              for (const at of [0, 3, 11]) {
                const reference = await expectSame(model, fused, tree, subset, { name: `stop at ${at}`, prompt: SHORT_PROMPT, maxNewTokens: 30, stopIds: [free.tokens[at], VOCAB + 5] }, [undefined, 4]);
                expect(reference.stopReason).to.equal('stop-token');
              }
            } finally {
              await fused.release();
            }
          });
        }
      }
    });
  }

  it('stops at the context length like the host engine', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1, contextLength: 26 });
    const tree = { depth: 4, topK: 4, tokens: 16 };
    const fused = await FusedEagle.create(model, { tree, threads: 1 });
    try {
      const reference = await expectSame(model, fused, tree, undefined, { name: 'context', prompt: SHORT_PROMPT, maxNewTokens: 100 });
      expect(reference.stopReason).to.equal('context-length');
      expect(reference.tokens).to.have.lengthOf(26 - SHORT_PROMPT.length);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('moves far fewer bytes per token than the host engine, and counts the graphs each iteration runs', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const tree = { depth: 4, topK: 4, tokens: 16 };
    const fused = await FusedEagle.create(model, { tree, threads: 1 });
    try {
      const c = { prompt: LONG_PROMPT, maxNewTokens: 40 };
      const reference = await hostRun(model, tree, undefined, { name: '', ...c });
      const whole = await fused.generate(c.prompt, c);
      expect(whole.stats.bytesPerToken).to.be.below(reference.stats.bytesPerToken / 2);
      expect(whole.stats.cycles).to.be.above(1);
      // Prefill: 2 target chunks; then one target forward, 4 EAGLE forwards and 4 head runs per cycle.
      expect(whole.stats.targetForwards).to.equal(2 + whole.stats.cycles);
      expect(whole.stats.headRuns).to.equal(4 * whole.stats.cycles);
      expect(whole.stats.meanAcceptanceLength).to.equal(reference.stats.meanAcceptanceLength);
    } finally {
      await fused.release();
      await model.release();
    }
  });

  it('samples reproducibly for a seed (top-p 1 and nucleus), within the token budget', async () => {
    const model = await EngineModel.open(dirs.fp32, { ep: 'cpu', threads: 1 });
    const fused = await FusedEagle.create(model, { tree: { depth: 3, topK: 3, tokens: 8 }, threads: 1 });
    try {
      await expectReproducibleSampling(fused, SHORT_PROMPT);
    } finally {
      await fused.release();
      await model.release();
    }
  });
});

describe('fused eagle loop on the demo models (CPU)', function () {
  let model: EngineModel;
  before(async function () {
    if (!existsSync(join(DEMO_MODEL_DIR, 'config.json'))) this.skip();
    model = await EngineModel.open(DEMO_MODEL_DIR, { ep: 'cpu' });
  });
  after(async () => model?.release());

  const PROMPT = [128000, 791, 6864, 315, 9822, 374];

  for (const method of ['eagle2', 'fr-spec'] as const) {
    it(`${method} equals the host engine token for token (EOS ids, a stop id), same cycles`, async () => {
      const subset = method === 'fr-spec' ? Array.from(loadVocabMap(undefined, { dir: DEMO_MODEL_DIR, vocabSize: model.config.vocab_size, tokenizerVocabSize: model.config.vocab_size }).ids) : undefined;
      const tree = { depth: 4, topK: 4, tokens: 16 };
      const fused = await FusedEagle.create(model, { tree, vocabSubset: subset });
      try {
        const eos = model.config.eos_token_ids;
        await expectSame(model, fused, tree, subset, { name: 'demo budget + EOS', prompt: PROMPT, maxNewTokens: 48, stopIds: eos }, [undefined, 16]);
        const free = await hostRun(model, tree, subset, { name: '', prompt: PROMPT, maxNewTokens: 20 });
        const reference = await expectSame(model, fused, tree, subset, { name: 'demo stop id', prompt: PROMPT, maxNewTokens: 48, stopIds: [...eos, free.tokens[7]] }, [undefined]);
        expect(reference.stopReason).to.equal('stop-token');
      } finally {
        await fused.release();
      }
    });
  }
});
