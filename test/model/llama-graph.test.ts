import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { SafetensorsCheckpoint } from '../../src/model/checkpoint.js';
import { bfloat16BitsToFloat32, float32ToBfloat16Bits, roundToFloat16 } from '../../src/model/half-precision.js';
import { resolveDecoderConfig, type DecoderArchitecture, type HfDecoderConfig } from '../../src/model/llama-config.js';
import { buildLlamaTargetGraph, GRAPH_OPS, TARGET_IO } from '../../src/model/llama-graph.js';
import type { FloatDType } from '../../src/model/onnx/dtypes.js';
import { writeSafetensors, type HostTensor } from '../../src/model/safetensors.js';
import { createSession, floats, floatTensor, int64Tensor, ints } from './helpers/ort.js';
import { MapWeights, randomLlamaWeights, referenceForward, type ReferenceOutput } from './helpers/reference-llama.js';
import * as ref from './helpers/reference-math.js';
import { expectClose, FP16_TOLERANCE, FP32_TOLERANCE, type Values } from './helpers/reference-math.js';

const TINY_LLAMA: HfDecoderConfig = {
  model_type: 'llama',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  vocab_size: 97,
};

const VARIANTS: Record<string, HfDecoderConfig> = {
  llama: TINY_LLAMA,
  'qwen2 (q/k/v biases, tied embeddings)': { ...TINY_LLAMA, model_type: 'qwen2', rope_theta: 1e6, tie_word_embeddings: true },
  'llama3 rope scaling, attention_bias, head_dim 16': {
    ...TINY_LLAMA,
    head_dim: 16,
    attention_bias: true,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  },
};

const TOP_K = 5;
const PROMPT = [5, 17, 96, 0, 42, 42, 3];
/** A draft tree in topological order (parents before children). */
const TREE_PARENTS = [-1, 0, 0, 1, 2, 3];
const TREE_TOKENS = [11, 60, 2, 77, 11, 90];

interface Step {
  inputIds: number[];
  positions: number[];
  mask: Float32Array;
  pastKeys: Values[];
  pastValues: Values[];
}

interface GraphOutput {
  hidden: Float32Array;
  logits: Float32Array;
  argmax: number[];
  topkIds: number[];
  topkLogprobs: Float32Array;
  newKeys: Float32Array[];
  newValues: Float32Array[];
}

async function runTarget(session: ort.InferenceSession, arch: DecoderArchitecture, dtype: FloatDType, step: Step): Promise<GraphOutput> {
  const s = step.inputIds.length;
  const kvRow = arch.numKvHeads * arch.headDim;
  const past = step.pastKeys[0].length / kvRow;
  const feeds: Record<string, ort.Tensor> = {
    [TARGET_IO.inputIds]: int64Tensor(step.inputIds, [1, s]),
    [TARGET_IO.positionIds]: int64Tensor(step.positions, [1, s]),
    [TARGET_IO.attentionBias]: floatTensor('float32', step.mask, [1, 1, s, past + s]),
  };
  for (let i = 0; i < arch.numLayers; i++) {
    feeds[TARGET_IO.pastKey(i)] = floatTensor(dtype, step.pastKeys[i], [1, past, arch.numKvHeads, arch.headDim]);
    feeds[TARGET_IO.pastValue(i)] = floatTensor(dtype, step.pastValues[i], [1, past, arch.numKvHeads, arch.headDim]);
  }
  const out = await session.run(feeds);
  const layers = Array.from({ length: arch.numLayers }, (_, i) => i);
  return {
    hidden: floats(out[TARGET_IO.hidden]),
    logits: floats(out[TARGET_IO.logits]),
    argmax: ints(out[TARGET_IO.argmax]),
    topkIds: ints(out[TARGET_IO.topkIds]),
    topkLogprobs: floats(out[TARGET_IO.topkLogprobs]),
    newKeys: layers.map((i) => floats(out[TARGET_IO.newKey(i)])),
    newValues: layers.map((i) => floats(out[TARGET_IO.newValue(i)])),
  };
}

const emptyPast = (arch: DecoderArchitecture) => Array.from({ length: arch.numLayers }, () => new Float32Array(0));

function promptStep(arch: DecoderArchitecture): Step {
  return {
    inputIds: PROMPT,
    positions: PROMPT.map((_, i) => i),
    mask: ref.causalMask(PROMPT.length, 0),
    pastKeys: emptyPast(arch),
    pastValues: emptyPast(arch),
  };
}

/** The tree after the prompt: positions are prompt length + depth, so they repeat and skip. */
function treeStep(pastKeys: Values[], pastValues: Values[]): Step {
  const depth = (node: number): number => (TREE_PARENTS[node] < 0 ? 0 : 1 + depth(TREE_PARENTS[node]));
  return {
    inputIds: TREE_TOKENS,
    positions: TREE_TOKENS.map((_, node) => PROMPT.length + depth(node)),
    mask: ref.treeMask(TREE_PARENTS, PROMPT.length),
    pastKeys,
    pastValues,
  };
}

/** Rows whose reference top-2 logits are apart by more than `margin` must have the same argmax. */
function expectArgmaxWhereUnambiguous(actual: number[], logits: Values, rows: number, vocab: number, margin: number): void {
  for (let r = 0; r < rows; r++) {
    const [best, second] = ref.topKRows(logits, rows, vocab, 2)[r];
    if (logits[r * vocab + best] - logits[r * vocab + second] > margin) expect(actual[r], `argmax row ${r}`).to.equal(best);
  }
}

function compareWithReference(arch: DecoderArchitecture, actual: GraphOutput, expected: ReferenceOutput, rows: number, tolerance: number): void {
  expectClose(actual.hidden, expected.hidden, tolerance, 'hidden');
  expectClose(actual.logits, expected.logits, tolerance, 'logits');
  for (let i = 0; i < arch.numLayers; i++) {
    expectClose(actual.newKeys[i], expected.newKeys[i], tolerance, `new_key_${i}`);
    expectClose(actual.newValues[i], expected.newValues[i], tolerance, `new_value_${i}`);
  }
  const logScale = Math.max(...expected.logits.map(Math.abs));
  expectArgmaxWhereUnambiguous(actual.argmax, expected.logits, rows, arch.vocabSize, 2 * tolerance * logScale);
  // top-k: the log-probs at the returned ids match the reference's, and are the reference's top values.
  const logprobs = ref.logSoftmaxRows(expected.logits, rows, arch.vocabSize);
  const atReturnedIds = actual.topkIds.map((id, i) => logprobs[Math.floor(i / TOP_K) * arch.vocabSize + id]);
  const referenceTop = ref.topKRows(expected.logits, rows, arch.vocabSize, TOP_K).flatMap((row, r) => row.map((id) => logprobs[r * arch.vocabSize + id]));
  expectClose(actual.topkLogprobs, atReturnedIds, tolerance, 'topk_logprobs at returned ids');
  expectClose(actual.topkLogprobs, referenceTop, tolerance, 'topk_logprobs vs reference top-k');
}

async function checkPromptThenTree(arch: DecoderArchitecture, weights: MapWeights, dtype: FloatDType, session: ort.InferenceSession) {
  const tolerance = dtype === 'float32' ? FP32_TOLERANCE : FP16_TOLERANCE;
  const referenceWeights = dtype === 'float16' ? weights.mapData(roundToFloat16) : weights;

  const prompt = await runTarget(session, arch, dtype, promptStep(arch));
  const promptReference = referenceForward(arch, referenceWeights, promptStep(arch));
  compareWithReference(arch, prompt, promptReference, PROMPT.length, tolerance);

  const tree = await runTarget(session, arch, dtype, treeStep(prompt.newKeys, prompt.newValues));
  const treeReference = referenceForward(arch, referenceWeights, treeStep(promptReference.newKeys, promptReference.newValues));
  compareWithReference(arch, tree, treeReference, TREE_TOKENS.length, tolerance);
  return { prompt, tree };
}

describe('model/llama-graph (target graph vs a plain TypeScript forward)', () => {
  for (const [label, config] of Object.entries(VARIANTS)) {
    describe(label, () => {
      const arch = resolveDecoderConfig(config);
      const weights = randomLlamaWeights(arch, 1234);

      for (const ops of GRAPH_OPS) for (const dtype of ['float32', 'float16'] as const) {
        it(`${ops} ops, ${dtype}: prompt (P=0), then a tree-masked batch over the cached prompt`, async () => {
          const session = await createSession(buildLlamaTargetGraph(arch, weights, { dtype, logits: true, topK: TOP_K, ops }));
          try {
            await checkPromptThenTree(arch, weights, dtype, session);
          } finally {
            await session.release();
          }
        });
      }
    });
  }

  for (const ops of GRAPH_OPS) describe(`llama, float32, ${ops} ops`, () => {
    const arch = resolveDecoderConfig(TINY_LLAMA);
    const weights = randomLlamaWeights(arch, 99);
    let session: ort.InferenceSession;
    before(async () => {
      session = await createSession(buildLlamaTargetGraph(arch, weights, { dtype: 'float32', logits: true, topK: TOP_K, ops }));
    });
    after(() => session.release());

    it('each tree node equals a plain causal run over the prompt and its path', async () => {
      const prompt = await runTarget(session, arch, 'float32', promptStep(arch));
      const tree = await runTarget(session, arch, 'float32', treeStep(prompt.newKeys, prompt.newValues));
      const d = arch.hiddenSize;
      for (let node = 0; node < TREE_TOKENS.length; node++) {
        const path: number[] = [];
        for (let n = node; n >= 0; n = TREE_PARENTS[n]) path.unshift(n);
        const linear = await runTarget(session, arch, 'float32', {
          inputIds: path.map((n) => TREE_TOKENS[n]),
          positions: path.map((_, i) => PROMPT.length + i),
          mask: ref.causalMask(path.length, PROMPT.length),
          pastKeys: prompt.newKeys,
          pastValues: prompt.newValues,
        });
        const last = path.length - 1;
        expectClose(tree.hidden.subarray(node * d, (node + 1) * d), linear.hidden.subarray(last * d, (last + 1) * d), FP32_TOLERANCE, `node ${node}`);
        expect(tree.argmax[node]).to.equal(linear.argmax[last]);
      }
    });

    it('token-by-token decoding with the returned K/V appended reproduces the one-shot prefill', async () => {
      const prefill = await runTarget(session, arch, 'float32', promptStep(arch));
      let pastKeys: Values[] = emptyPast(arch);
      let pastValues: Values[] = emptyPast(arch);
      const d = arch.hiddenSize;
      for (let t = 0; t < PROMPT.length; t++) {
        const step = await runTarget(session, arch, 'float32', {
          inputIds: [PROMPT[t]],
          positions: [t],
          mask: new Float32Array(t + 1),
          pastKeys,
          pastValues,
        });
        expectClose(step.hidden, prefill.hidden.subarray(t * d, (t + 1) * d), FP32_TOLERANCE, `hidden at ${t}`);
        expect(step.argmax[0]).to.equal(prefill.argmax[t]);
        pastKeys = pastKeys.map((past, i) => ref.concat(past, step.newKeys[i]));
        pastValues = pastValues.map((past, i) => ref.concat(past, step.newValues[i]));
      }
      const kvRow = arch.numKvHeads * arch.headDim;
      for (let i = 0; i < arch.numLayers; i++) {
        expectClose(pastKeys[i], prefill.newKeys[i], FP32_TOLERANCE, `keys of layer ${i}`);
        expect(pastValues[i].length).to.equal(PROMPT.length * kvRow);
      }
    });
  });

  it('builds from a sharded BF16 safetensors checkpoint and runs from external data', async () => {
    const arch = resolveDecoderConfig(TINY_LLAMA);
    const weights = randomLlamaWeights(arch, 7);
    const dir = mkdtempSync(join(tmpdir(), 'fr-spec-llama-'));
    try {
      const shards: Record<string, HostTensor>[] = [{}, {}];
      const weightMap: Record<string, string> = {};
      [...weights.tensors].forEach(([name, tensor], i) => {
        shards[i % 2][name] = { dtype: 'BF16', shape: tensor.shape, data: float32ToBfloat16Bits(tensor.data) };
        weightMap[name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
      });
      shards.forEach((tensors, i) => writeSafetensors(join(dir, `model-0000${i + 1}-of-00002.safetensors`), tensors));
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));

      const graph = buildLlamaTargetGraph(arch, SafetensorsCheckpoint.open(dir), { dtype: 'float32', logits: true, topK: TOP_K });
      const saved = graph.save(join(dir, 'target.onnx'), { externalDataThreshold: 0 });
      expect(saved.dataPath).to.equal(join(dir, 'target.onnx.data'));
      const session = await createSession(saved.modelPath);
      try {
        const bf16Weights = weights.mapData((data) => bfloat16BitsToFloat32(float32ToBfloat16Bits(data)));
        await checkPromptThenTree(arch, bf16Weights, 'float32', session);
      } finally {
        await session.release();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('declares the contract inputs and outputs', () => {
    const arch = resolveDecoderConfig(TINY_LLAMA);
    const model = buildLlamaTargetGraph(arch, randomLlamaWeights(arch, 1), { dtype: 'float16' }).toModel();
    const names = (list: { name: string }[]) => list.map((v) => v.name);
    expect(names(model.graph.input)).to.deep.equal(['input_ids', 'position_ids', 'attention_bias', 'past_key_0', 'past_value_0', 'past_key_1', 'past_value_1']);
    expect(names(model.graph.output)).to.deep.equal(['new_key_0', 'new_value_0', 'new_key_1', 'new_value_1', 'hidden', 'argmax']);
    const dims = (v: (typeof model.graph.input)[number]) => v.type.tensor_type.shape!.dim.map((d) => ('dim_value' in d ? d.dim_value : d.dim_param));
    expect(dims(model.graph.input[2])).to.deep.equal([1, 1, 'sequence_length', 'total_sequence_length']);
    expect(dims(model.graph.input[3])).to.deep.equal([1, 'past_sequence_length', 2, 8]);
    expect(dims(model.graph.output[0])).to.deep.equal([1, 'sequence_length', 2, 8]);
  });
});
