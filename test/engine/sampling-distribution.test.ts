/**
 * Sampling is lossless: on a tiny exported model (16-token vocabulary), the first committed tokens
 * of eagle2, fr-spec, sps and ouroboros runs over many seeds follow the target's own distribution,
 * computed exactly by enumeration with a plain TypeScript forward pass (chi-square at 1e-4 over
 * pairs of consecutive tokens). Vanilla sampling is checked the same way.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type MethodSettings } from '../../src/engine/engine.js';
import { EngineModel } from '../../src/engine/model.js';
import { distributionFromLogits, type SamplingParams } from '../../src/engine/sampling.js';
import { referenceForward } from '../model/helpers/reference-llama.js';
import { causalMask } from '../model/helpers/reference-math.js';
import { writeModelSet, type ModelSet } from './helpers/model-sets.js';
import { chiSquare, countOutcomes } from './helpers/statistics.js';

const VOCAB = 16;
const PROMPT = [1, 7, 3];
const RUNS = 3000;

/** The target's sampling distribution after `tokens`, from the float64 reference forward. */
function referenceDistribution(set: ModelSet, tokens: readonly number[], sampling: SamplingParams): Float64Array {
  const { arch, weights } = set.target;
  const empty = () => Array.from({ length: arch.numLayers }, () => new Float64Array(0));
  const out = referenceForward(arch, weights, { inputIds: tokens, positions: tokens.map((_, i) => i), mask: causalMask(tokens.length, 0), pastKeys: empty(), pastValues: empty() });
  return distributionFromLogits(out.logits.subarray((tokens.length - 1) * arch.vocabSize), sampling);
}

/** Exact P(x1, x2) and P(x2, x3) of the first three new tokens. */
function exactPairs(set: ModelSet, sampling: SamplingParams): { first: Map<string, number>; second: Map<string, number> } {
  const first = new Map<string, number>();
  const second = new Map<string, number>();
  const p1 = referenceDistribution(set, PROMPT, sampling);
  p1.forEach((a, x1) => {
    if (a === 0) return;
    const p2 = referenceDistribution(set, [...PROMPT, x1], sampling);
    p2.forEach((b, x2) => {
      if (b === 0) return;
      first.set(`${x1},${x2}`, a * b);
      const p3 = referenceDistribution(set, [...PROMPT, x1, x2], sampling);
      p3.forEach((c, x3) => {
        if (c > 0) second.set(`${x2},${x3}`, (second.get(`${x2},${x3}`) ?? 0) + a * b * c);
      });
    });
  });
  return { first, second };
}

describe('engine: sampling follows the target\'s distribution (tiny model, CPU)', function () {
  let root: string;
  let set: ModelSet;
  let model: EngineModel;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-engine-sampling-'));
    set = await writeModelSet(root, { vocabSize: VOCAB, attention: 0.5, seed: 9, headScale: 2 });
    model = await EngineModel.open(set.dir, { ep: 'cpu', threads: 1 });
  });
  after(async () => {
    await model?.release();
    rmSync(root, { recursive: true, force: true });
  });

  const subset = [3, 9, 0, 14, 5, 11, 7, 2, 12, 6];
  const methods: [string, MethodSettings][] = [
    ['vanilla', { method: 'vanilla' }],
    ['eagle2', { method: 'eagle2', tree: { depth: 3, topK: 3, tokens: 8 } }],
    ['fr-spec', { method: 'fr-spec', tree: { depth: 3, topK: 3, tokens: 8 }, vocabSubset: subset }],
    ['sps', { method: 'sps', gamma: 2 }],
    ['ouroboros', { method: 'ouroboros', gamma: 2 }],
    // The fused loops' in-graph draws and walk, fed uniforms from the host.
    ['vanilla, fused loop', { method: 'vanilla', engine: 'fused' }],
    ['eagle2, fused loop', { method: 'eagle2', tree: { depth: 3, topK: 3, tokens: 8 }, engine: 'fused' }],
    ['fr-spec, fused loop', { method: 'fr-spec', tree: { depth: 3, topK: 3, tokens: 8 }, vocabSubset: subset, engine: 'fused' }],
    ['sps, fused loop', { method: 'sps', gamma: 2, engine: 'fused' }],
  ];

  for (const sampling of [{ temperature: 1, topP: 1 }, { temperature: 0.7, topP: 0.9 }, { temperature: 0.6, topP: 1 }]) {
    for (const [name, settings] of methods) {
      const fused = settings.engine === 'fused';
      // The third setting checks the fused loops' temperature input only.
      if (!fused && sampling.temperature === 0.6) continue;
      it(`${name} at temperature ${sampling.temperature}, top-p ${sampling.topP}: pairs (x1, x2) and (x2, x3)`, async () => {
        const exact = exactPairs(set, sampling);
        const generator = await Generator.create(model, settings);
        const runs: number[][] = [];
        let accepted = 0;
        let cycles = 0;
        for (let seed = 0; seed < RUNS; seed++) {
          const result = await generator.generate(PROMPT, { maxNewTokens: 3, sampling, seed });
          runs.push(result.tokens);
          cycles += result.stats.cycles;
          accepted += result.tokens.length - 1 - result.stats.cycles;
        }
        await generator.release();
        const first = chiSquare(countOutcomes(runs.map((t) => t.slice(0, 2))), exact.first, RUNS);
        const second = chiSquare(countOutcomes(runs.map((t) => t.slice(1, 3))), exact.second, RUNS);
        const label = `${JSON.stringify({ first, second })}; ${accepted} drafts accepted over ${cycles} cycles`;
        expect(first.statistic, label).to.be.below(first.critical);
        expect(second.statistic, label).to.be.below(second.critical);
        if (fused) expect(generator.engine).to.equal('fused');
        if (settings.method !== 'vanilla') {
          expect(accepted, label).to.be.above(cycles * 0.1);
          expect(accepted, label).to.be.below(cycles * 2);
        }
      });
    }
  }

  it('ouroboros\' sample-and-match walk draws one uniform per committed token, so it reproduces vanilla\'s sample for the same seed', async () => {
    const sampling = { temperature: 1, topP: 1 };
    const vanilla = await Generator.create(model, { method: 'vanilla' });
    const ouroboros = await Generator.create(model, { method: 'ouroboros', gamma: 3 });
    for (let seed = 0; seed < 30; seed++) {
      const expected = await vanilla.generate(PROMPT, { maxNewTokens: 24, sampling, seed });
      const actual = await ouroboros.generate(PROMPT, { maxNewTokens: 24, sampling, seed });
      expect(actual.tokens, `seed ${seed}`).to.deep.equal(expected.tokens);
    }
  });

  it('fp16 models sample with every method, reproducibly for a seed', async () => {
    const fp16 = await writeModelSet(join(root, 'fp16'), { vocabSize: VOCAB, attention: 0.5, seed: 9, dtype: 'fp16' });
    const half = await EngineModel.open(fp16.dir, { ep: 'cpu', threads: 1 });
    try {
      for (const [name, settings] of methods) {
        const generator = await Generator.create(half, settings);
        const options = { maxNewTokens: 20, sampling: { temperature: 0.9, topP: 0.95 }, seed: 5 };
        const first = await generator.generate(PROMPT, options);
        expect(first.tokens, name).to.have.lengthOf(20);
        expect((await generator.generate(PROMPT, options)).tokens, name).to.deep.equal(first.tokens);
        await generator.release();
      }
    } finally {
      await half.release();
    }
  });
});
