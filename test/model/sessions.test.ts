/**
 * Exported model folders run through ModelSessions on the CPU provider and compared with the plain
 * TypeScript reference: target, plain draft, EAGLE head, full LM head and FR-Spec subset heads.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contractMismatches, decoderSpec, eagleSpec, headSpec } from '../../src/model/contract.js';
import { allocFloatData, floatDataFrom } from '../../src/model/float-data.js';
import type { DecoderSession } from '../../src/model/graph-sessions.js';
import { roundToFloat16 } from '../../src/model/half-precision.js';
import { GRAPH_OPS } from '../../src/model/llama-graph.js';
import type { FloatDType } from '../../src/model/onnx/dtypes.js';
import { ModelSessions } from '../../src/model/session.js';
import { UserError } from '../../src/util/errors.js';
import { referenceEagleForward } from './helpers/reference-eagle.js';
import { MapWeights, referenceForward } from './helpers/reference-llama.js';
import * as ref from './helpers/reference-math.js';
import { expectClose, FP16_TOLERANCE, FP32_TOLERANCE, Rng } from './helpers/reference-math.js';
import { checkDecoder, f32, promptStep, referenceTopK, sessionStep, TREE_TOKENS, treeStep } from './helpers/session-checks.js';
import { QWEN2_TARGET_CONFIG, runExportCli, writeTinyDecoder, writeTinyModelSet, type TinyDecoder, type TinyModelSet } from './helpers/tiny-models.js';

const TOP_K = 6;

const tolerance = (dtype: FloatDType) => (dtype === 'float32' ? FP32_TOLERANCE : FP16_TOLERANCE);
const heldWeights = (weights: MapWeights, dtype: FloatDType) => (dtype === 'float16' ? weights.mapData(roundToFloat16) : weights);

/** A tiny checkpoint's decoder through a session, in the export's float type. */
const checkTinyDecoder = (session: DecoderSession, model: TinyDecoder, dtype: FloatDType) => checkDecoder(session, model.arch, heldWeights(model.weights, dtype), dtype, tolerance(dtype));

describe('model/session (exported folders on the CPU provider vs the TypeScript reference)', () => {
  let root: string;
  let models: TinyModelSet;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-sessions-'));
    models = writeTinyModelSet(root);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const ops of GRAPH_OPS) for (const dtype of ['float32', 'float16'] as const) {
    describe(`${dtype} export (${ops} ops) of a Llama target (llama3 RoPE) with an EAGLE head and a draft model`, () => {
      let sessions: ModelSessions;
      before(async () => {
        const out = join(root, `models-${ops}-${dtype}`);
        await runExportCli(['--target', models.target.dir, '--eagle', models.eagle.dir, '--draft', models.draft.dir, '--out', out, '--dtype', dtype === 'float32' ? 'fp32' : 'fp16', '--ops', ops]);
        sessions = await ModelSessions.open(out, { ep: 'cpu', threads: 1 });
      });
      after(() => sessions?.release());

      it('every graph declares the contract\'s inputs and outputs (names, dtypes, shapes)', () => {
        const { config } = sessions.folder;
        const declared = (s: { session: { inputMetadata: readonly unknown[]; outputMetadata: readonly unknown[] } }) =>
          ({ inputs: s.session.inputMetadata, outputs: s.session.outputMetadata }) as Parameters<typeof contractMismatches>[1];
        expect(sessions.ep).to.equal('cpu');
        expect(contractMismatches(decoderSpec(config.target.architecture, dtype), declared(sessions.target))).to.deep.equal([]);
        expect(contractMismatches(decoderSpec(config.draft!.architecture, dtype), declared(sessions.draft!))).to.deep.equal([]);
        expect(contractMismatches(eagleSpec(config), declared(sessions.eagle!))).to.deep.equal([]);
        expect(contractMismatches(headSpec(config), declared(sessions.head))).to.deep.equal([]);
        const byName = Object.fromEntries(sessions.target.session.inputMetadata.map((m) => [m.name, m]));
        expect(byName.past_key_1).to.deep.include({ type: dtype, shape: [1, 'past_sequence_length', 2, 8] });
        expect(byName.attention_bias).to.deep.include({ type: 'float32', shape: [1, 1, 'sequence_length', 'total_sequence_length'] });
      });

      it('target: prompt, then a tree-masked batch over the returned K/V', async () => {
        await checkTinyDecoder(sessions.target, models.target, dtype);
      });

      it('plain draft model: same contract as the target', async () => {
        await checkTinyDecoder(sessions.draft!, models.draft, dtype);
      });

      it('EAGLE head and the full LM head: prompt over target features, then a tree step', async () => {
        const tol = tolerance(dtype);
        const target = heldWeights(models.target.weights, dtype);
        const head = heldWeights(models.eagle.weights, dtype);
        const embedTable = target.readFloat32('model.embed_tokens.weight').data;
        const d = 32;
        const features = referenceForward(models.target.arch, target, promptStep(2)).hidden;

        const promptRef = { ...promptStep(1), feature: features };
        const promptExpected = referenceEagleForward(models.eagle.eagle, head, embedTable, promptRef);
        const prompt = await sessions.eagle!.run({ ...sessionStep(promptRef, dtype), feature: floatDataFrom(dtype, features) });
        expectClose(f32(prompt.out), promptExpected.out, tol, 'prompt out');
        expectClose(f32(prompt.newKeys[0]), promptExpected.newKeys[0], tol, 'prompt new_key_0');
        expectClose(f32(prompt.newValues[0]), promptExpected.newValues[0], tol, 'prompt new_value_0');

        const treeFeature = new Rng(3).floats(TREE_TOKENS.length * d);
        const treeRef = { ...treeStep([f32(prompt.newKeys[0])], [f32(prompt.newValues[0])]), feature: treeFeature };
        const treeExpected = referenceEagleForward(models.eagle.eagle, head, embedTable, treeRef);
        const tree = await sessions.eagle!.run({ ...sessionStep(treeRef, dtype), feature: floatDataFrom(dtype, treeFeature) });
        expectClose(f32(tree.out), treeExpected.out, tol, 'tree out');

        // The draft LM head is the target's: top-k of log-softmax over the full vocabulary.
        const headMatrix = target.readFloat32('lm_head.weight').data;
        const rows = TREE_TOKENS.length;
        const logits = ref.hfLinear(f32(tree.out), rows, headMatrix, 97, d);
        const expected = referenceTopK(logits, rows, 97, [...Array(97).keys()], TOP_K);
        const top = await sessions.head.run(tree.out, TOP_K);
        expect(top.ids).to.be.instanceOf(BigInt64Array).with.lengthOf(rows * TOP_K);
        expect(top.logprobs).to.be.instanceOf(Float32Array).with.lengthOf(rows * TOP_K);
        expectClose(top.logprobs, expected.logprobs, tol, 'head log-probs');
        if (dtype === 'float32') expect(Array.from(top.ids, Number)).to.deep.equal(expected.ids);
      });

      it('FR-Spec subset head: the full head\'s top-k restricted to the subset, with full-vocabulary ids', async () => {
        const tol = tolerance(dtype);
        const rng = new Rng(21);
        const subset = [...Array(97).keys()].sort(() => rng.next() - 0.5).slice(0, 30);
        const rows = 5;
        const hidden = floatDataFrom(dtype, rng.floats(rows * 32));
        const headMatrix = heldWeights(models.target.weights, dtype).readFloat32('lm_head.weight').data;
        const logits = ref.hfLinear(f32(hidden), rows, headMatrix, 97, 32);
        const expected = referenceTopK(logits, rows, 97, subset, TOP_K);

        const subsetHead = await sessions.subsetHead(subset);
        expect(subsetHead.vocabSize).to.equal(30);
        const top = await subsetHead.run(hidden, TOP_K);
        expectClose(top.logprobs, expected.logprobs, tol, 'subset log-probs');
        if (dtype === 'float32') expect(Array.from(top.ids, Number)).to.deep.equal(expected.ids);
        for (const id of top.ids) expect(subset).to.include(Number(id));

        // With the whole vocabulary as the "subset" (in another order), it agrees with the full head.
        const everything = [...Array(97).keys()].reverse();
        const [viaSubset, viaFull] = await Promise.all([(await sessions.subsetHead(everything)).run(hidden, TOP_K), sessions.head.run(hidden, TOP_K)]);
        expectClose(viaSubset.logprobs, viaFull.logprobs, 1e-6, 'whole-vocabulary subset vs full head');
        if (dtype === 'float32') expect(Array.from(viaSubset.ids)).to.deep.equal(Array.from(viaFull.ids));
      });
    });
  }

  it('a Qwen2 target (transformers 5.x rope_parameters, tied embeddings, q/k/v biases) from a sharded BF16 checkpoint', async () => {
    const qwen = writeTinyDecoder(join(root, 'qwen2'), QWEN2_TARGET_CONFIG, 31, { shards: 2, dtype: 'BF16' });
    const out = join(root, 'models-qwen2');
    await runExportCli(['--target', qwen.dir, '--out', out, '--dtype', 'fp32']);
    const sessions = await ModelSessions.open(out, { ep: 'cpu', threads: 1 });
    try {
      expect(sessions.folder.config.target.architecture).to.include({ model_type: 'qwen2', tie_word_embeddings: true, rope_theta: 1000000 });
      await checkTinyDecoder(sessions.target, qwen, 'float32');
    } finally {
      await sessions.release();
    }
  });

  describe('sessions API', () => {
    let sessions: ModelSessions;
    before(async () => {
      const out = join(root, 'models-api');
      await runExportCli(['--target', models.target.dir, '--out', out, '--dtype', 'fp32']);
      sessions = await ModelSessions.open(out, { ep: 'auto', threads: 1 });
    });
    after(() => sessions?.release());

    it('auto picks the CPU provider here (no CUDA provider library installed)', () => {
      expect(sessions.ep).to.equal('cpu');
      expect(sessions.eagle).to.equal(undefined);
      expect(sessions.draft).to.equal(undefined);
    });

    it('builds each subset head once and reuses it', async () => {
      const first = await sessions.subsetHead([4, 8, 15, 16, 23, 42]);
      expect(await sessions.subsetHead(Int32Array.of(4, 8, 15, 16, 23, 42))).to.equal(first);
      expect(await sessions.subsetHead([4, 8, 15, 16, 23])).not.to.equal(first);
    });

    it('refuses bad subsets and bad top-k with clear errors', async () => {
      const rejection = async (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as Error);
      expect(await rejection(sessions.subsetHead([1, 2, 97]))).to.be.instanceOf(UserError).with.property('message').match(/vocabulary id 97 is outside the head's vocabulary \(0\.\.96\)/);
      expect(await rejection(sessions.subsetHead([1, 2, 2]))).to.be.instanceOf(UserError).with.property('message').match(/more than once/);
      const head = await sessions.subsetHead([1, 2, 3]);
      expect(await rejection(head.run(allocFloatData('float32', 32), 4))).to.have.property('message').match(/top-k must be between 1 and the head's vocabulary size 3/);
    });

    it('checks the lengths of what it is fed', async () => {
      const step = { ...sessionStep(promptStep(2), 'float32'), attentionBias: new Float32Array(3) };
      const error = await sessions.target.run(step).then(() => undefined, (e: unknown) => e as Error);
      expect(error?.message).to.match(/attention_bias has 3 values, expected 9 × 9/);
    });
  });
});
