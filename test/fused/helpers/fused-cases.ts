/**
 * What the fused-loop equivalence tests share: the tiny fp32 and fp16 model sets, the cases they run,
 * and the check of one fused run (chunked or not) against the host engine's reference.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GenerateOptions, GenerationResult } from '../../../src/engine/engine.js';
import type { FusedOptions } from '../../../src/engine/fused/fused-run.js';
import type { GraphProto } from '../../../src/model/onnx/proto.js';
import { writeModelSet, type ModelSetOptions } from '../../engine/helpers/model-sets.js';

export const FUSED_VOCAB = 32;

export interface FusedCase {
  name: string;
  prompt: number[];
  maxNewTokens: number;
  stopIds?: number[];
}

export const caseOptions = (c: FusedCase): GenerateOptions => ({ maxNewTokens: c.maxNewTokens, stopIds: c.stopIds });

export const FUSED_MODEL_SETS = ['fp32', 'fp16', 'fp32, fused ops', 'fp16, fused ops'] as const;
export type FusedModelSet = (typeof FUSED_MODEL_SETS)[number];

/**
 * Writes the tiny model sets (fp32 and fp16 graphs, standard and fused ops) before the suite and
 * removes them after; returns their folders by name.
 */
export function tinyFusedModelSets(prefix: string): Record<FusedModelSet, string> {
  const fp32 = { vocabSize: FUSED_VOCAB, attention: 0.5, seed: 3 };
  const fp16 = { vocabSize: FUSED_VOCAB, attention: 0.6, seed: 5, dtype: 'fp16' as const };
  const sets: Record<FusedModelSet, ModelSetOptions> = { fp32, fp16, 'fp32, fused ops': { ...fp32, ops: 'fused' }, 'fp16, fused ops': { ...fp16, ops: 'fused' } };
  const dirs: Record<FusedModelSet, string> = { fp32: '', fp16: '', 'fp32, fused ops': '', 'fp16, fused ops': '' };
  let root: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), prefix));
    for (const [index, name] of FUSED_MODEL_SETS.entries()) dirs[name] = (await writeModelSet(join(root, `set-${index}`), sets[name])).dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  return dirs;
}

/** One fused run of `c` with `chunk`: its tokens, the streamed tokens and the stop reason equal the host's. */
export async function expectFusedRunEqualsHost(fused: { generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> }, reference: GenerationResult, c: FusedCase, chunk: number | undefined): Promise<{ result: GenerationResult; label: string }> {
  const streamed: number[] = [];
  const result = await fused.generate(c.prompt, { ...caseOptions(c), chunk, onTokens: (ids) => streamed.push(...ids) });
  const label = `${c.name}, chunk ${chunk ?? 'all'}`;
  expect(result.tokens, label).to.deep.equal(reference.tokens);
  expect(result.stopReason, label).to.equal(reference.stopReason);
  expect(streamed, label).to.deep.equal(reference.tokens);
  return { result, label };
}

/**
 * A fused loop samples reproducibly: for top-p 1 (whole and in chunks of 4) and nucleus, the same seed gives
 * the same 30 tokens and another seed others; a speculative loop's cycles commit more than one token on average.
 */
export async function expectReproducibleSampling(fused: { generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> }, prompt: readonly number[], { speculative = true } = {}): Promise<void> {
  for (const [sampling, chunk] of [[{ temperature: 0.8, topP: 1 }, undefined], [{ temperature: 0.8, topP: 1 }, 4], [{ temperature: 1, topP: 0.8 }, undefined]] as const) {
    const a = await fused.generate(prompt, { maxNewTokens: 30, sampling, seed: 5, chunk });
    const b = await fused.generate(prompt, { maxNewTokens: 30, sampling, seed: 5, chunk });
    const c = await fused.generate(prompt, { maxNewTokens: 30, sampling, seed: 6, chunk });
    expect(a.tokens).to.have.lengthOf(30);
    expect(b.tokens).to.deep.equal(a.tokens);
    expect(c.tokens).to.not.deep.equal(a.tokens);
    if (speculative) expect(a.stats.cycles).to.be.below(29);
  }
}

/** The values of the int64 initializer `name` of `graph` (a Slice's axes, say), whether stored as int64_data or raw bytes. */
export function int64InitializerValues(graph: GraphProto, name: string): number[] {
  const tensor = graph.initializer.find((t) => t.name === name);
  if (!tensor) throw new Error(`no initializer ${name}`);
  if (tensor.int64_data?.length) return tensor.int64_data.map(Number);
  const raw = tensor.raw_data!;
  return Array.from(new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), Number);
}
