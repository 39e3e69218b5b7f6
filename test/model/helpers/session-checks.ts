/**
 * Checks shared by the session tests: a prompt and a tree-masked step run through exported graphs
 * and compared with the plain TypeScript reference.
 */
import { expect } from 'chai';
import { floatDataFrom, floatDataToFloat32, type FloatData } from '../../../src/model/float-data.js';
import type { DecoderSession } from '../../../src/model/graph-sessions.js';
import type { DecoderArchitecture } from '../../../src/model/llama-config.js';
import type { FloatDType } from '../../../src/model/onnx/dtypes.js';
import { MapWeights, referenceForward, type ReferenceStep } from './reference-llama.js';
import * as ref from './reference-math.js';
import { expectClose, type Values } from './reference-math.js';

export const PROMPT = [5, 17, 96, 0, 42, 42, 3, 60, 8];
export const TREE_PARENTS = [-1, 0, 0, 1, 1, 2, 4];
export const TREE_TOKENS = [11, 60, 2, 77, 11, 90, 1];

export function promptStep(numLayers: number): ReferenceStep {
  return {
    inputIds: PROMPT,
    positions: PROMPT.map((_, i) => i),
    mask: ref.causalMask(PROMPT.length, 0),
    pastKeys: Array.from({ length: numLayers }, () => new Float64Array(0)),
    pastValues: Array.from({ length: numLayers }, () => new Float64Array(0)),
  };
}

export function treeStep(pastKeys: Values[], pastValues: Values[]): ReferenceStep {
  const depth = (node: number): number => (TREE_PARENTS[node] < 0 ? 0 : 1 + depth(TREE_PARENTS[node]));
  return { inputIds: TREE_TOKENS, positions: TREE_TOKENS.map((_, n) => PROMPT.length + depth(n)), mask: ref.treeMask(TREE_PARENTS, PROMPT.length), pastKeys, pastValues };
}

/** The reference step's inputs in the session's types. */
export function sessionStep(step: ReferenceStep, dtype: FloatDType) {
  return {
    inputIds: step.inputIds,
    positionIds: step.positions,
    attentionBias: Float32Array.from(step.mask),
    pastKeys: step.pastKeys.map((k) => floatDataFrom(dtype, k)),
    pastValues: step.pastValues.map((v) => floatDataFrom(dtype, v)),
  };
}

export const f32 = (data: FloatData) => floatDataToFloat32(data);

/** The greedy id must match wherever the reference's best logit wins clearly. */
function expectArgmax(actual: BigInt64Array, logits: Values, rows: number, vocab: number, margin: number): void {
  const top2 = ref.topKRows(logits, rows, vocab, 2);
  for (let r = 0; r < rows; r++) {
    const [best, second] = top2[r];
    if (logits[r * vocab + best] - logits[r * vocab + second] > margin) expect(Number(actual[r]), `argmax row ${r}`).to.equal(best);
  }
}

/**
 * Runs prompt then tree through a decoder session and compares both with the reference forward pass
 * over `weights` (the values the graph holds), within `tol`.
 */
export async function checkDecoder(session: DecoderSession, arch: DecoderArchitecture, weights: MapWeights, dtype: FloatDType, tol: number): Promise<void> {
  const check = async (step: ReferenceStep, label: string) => {
    const expected = referenceForward(arch, weights, step);
    const actual = await session.run(sessionStep(step, dtype));
    const rows = step.inputIds.length;
    expect(actual.hidden.length, `${label} hidden size`).to.equal(rows * arch.hiddenSize);
    expectClose(f32(actual.hidden), expected.hidden, tol, `${label} hidden`);
    actual.newKeys.forEach((k, i) => expectClose(f32(k), expected.newKeys[i], tol, `${label} new_key_${i}`));
    actual.newValues.forEach((v, i) => expectClose(f32(v), expected.newValues[i], tol, `${label} new_value_${i}`));
    expect(actual.argmax).to.be.instanceOf(BigInt64Array).with.lengthOf(rows);
    expectArgmax(actual.argmax, expected.logits, rows, arch.vocabSize, 4 * tol * Math.max(...expected.logits.map(Math.abs)));
    return { expected, actual };
  };
  const prompt = await check(promptStep(arch.numLayers), 'prompt');
  // The tree runs over the K/V the graph returned for the prompt, as an engine would feed them.
  const past = (list: FloatData[]) => list.map(f32);
  await check(treeStep(past(prompt.actual.newKeys), past(prompt.actual.newValues)), 'tree');
}

/** log-softmax over `vocabIds` of the reference logits, then top-k → [ids, logprobs] per row. */
export function referenceTopK(logits: Values, rows: number, vocab: number, vocabIds: readonly number[], k: number): { ids: number[]; logprobs: number[] } {
  const restricted = new Float64Array(rows * vocabIds.length);
  for (let r = 0; r < rows; r++) vocabIds.forEach((id, j) => (restricted[r * vocabIds.length + j] = logits[r * vocab + id]));
  const logprobs = ref.logSoftmaxRows(restricted, rows, vocabIds.length);
  const top = ref.topKRows(restricted, rows, vocabIds.length, k);
  return {
    ids: top.flatMap((row) => row.map((j) => vocabIds[j])),
    logprobs: top.flatMap((row, r) => row.map((j) => logprobs[r * vocabIds.length + j])),
  };
}
