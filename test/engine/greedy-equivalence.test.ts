/**
 * The engine on exported tiny models (CPU): for every method, greedy output equals vanilla decoding
 * token for token — short prompts, prompts longer than a prefill chunk, stop ids, the new-token
 * budget and the context length — with drafts that both pass and fail verification.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, METHODS, type GenerationResult, type Method, type MethodSettings } from '../../src/engine/engine.js';
import { EngineModel } from '../../src/engine/model.js';
import { SeededRandom } from '../../src/engine/random.js';
import { writeModelSet, type ModelSetOptions } from './helpers/model-sets.js';

const VOCAB = 32;
const SHORT_PROMPT = [1, 5, 9, 3];
const random = new SeededRandom(11);
/** Longer than one prefill chunk (256 tokens). */
const LONG_PROMPT = Array.from({ length: 300 }, () => Math.floor(random.uniform() * VOCAB));
const VERY_LONG_PROMPT = Array.from({ length: 1100 }, () => Math.floor(random.uniform() * VOCAB));
/** FR-Spec's subset: every other id, ordered as a frequency list would be (not ascending). */
const SUBSET = Array.from({ length: VOCAB / 2 }, (_, i) => (i * 2 + 7) % VOCAB);
/** A subset as wide as a real 32k map is for Llama-3 (most of the mass): all but 6 ids. */
const WIDE_SUBSET = Array.from({ length: VOCAB - 6 }, (_, i) => (i * 5 + 3) % VOCAB);

interface Case {
  name: string;
  prompt: number[];
  maxNewTokens: number;
  stopIds?: number[];
}

function settingsFor(method: Method, variant: 'default' | 'small' | 'chain', subset = SUBSET): MethodSettings {
  const tree = { default: undefined, small: { depth: 3, topK: 2, tokens: 5 }, chain: { depth: 5, topK: 1, tokens: 6 } }[variant];
  const gamma = { default: undefined, small: 2, chain: 1 }[variant];
  return { method, tree, gamma, vocabSubset: method === 'fr-spec' ? subset : undefined };
}

describe('engine: greedy output of every method equals vanilla decoding (tiny models, CPU)', function () {
  let root: string;
  const models: Record<string, EngineModel> = {};
  const sets: Record<string, ModelSetOptions> = {
    'fp32, drafts that mimic the target (mixed acceptance)': { vocabSize: VOCAB, attention: 0.3, seed: 3 },
    'fp32, a random EAGLE head and the target itself as draft model': { vocabSize: VOCAB, attention: 1, seed: 4, eagle: 'random', draft: 'target' },
    'fp16, drafts that mimic the target': { vocabSize: VOCAB, attention: 0.6, seed: 5, dtype: 'fp16' },
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-engine-greedy-'));
    for (const [name, options] of Object.entries(sets)) {
      const { dir } = await writeModelSet(join(root, String(Object.keys(models).length)), options);
      models[name] = await EngineModel.open(dir, { ep: 'cpu', threads: 1 });
    }
  });
  after(async () => {
    await Promise.all(Object.values(models).map((m) => m.release()));
    rmSync(root, { recursive: true, force: true });
  });

  async function run(model: EngineModel, settings: MethodSettings, c: Case): Promise<GenerationResult> {
    const generator = await Generator.create(model, settings);
    return generator.generate(c.prompt, { maxNewTokens: c.maxNewTokens, stopIds: c.stopIds });
  }

  for (const setName of Object.keys(sets)) {
    describe(setName, () => {
      const cases = async (model: EngineModel): Promise<Case[]> => {
        const free = await run(model, { method: 'vanilla' }, { name: '', prompt: SHORT_PROMPT, maxNewTokens: 40 });
        // A stop id the vanilla output reaches after a few tokens.
        const stop = free.tokens[9];
        return [
          { name: 'short prompt, token budget', prompt: SHORT_PROMPT, maxNewTokens: 40 },
          { name: 'stop id', prompt: SHORT_PROMPT, maxNewTokens: 40, stopIds: [stop] },
          { name: 'a 300-token prompt (chunked prefill)', prompt: LONG_PROMPT, maxNewTokens: 50 },
          { name: 'an 1100-token prompt', prompt: VERY_LONG_PROMPT, maxNewTokens: 30 },
          { name: 'a single new token', prompt: SHORT_PROMPT, maxNewTokens: 1 },
        ];
      };

      for (const variant of ['default', 'small', 'chain'] as const) {
        it(`${variant} tree / gamma settings: all methods, all cases`, async () => {
          const model = models[setName];
          for (const c of await cases(model)) {
            const reference = await run(model, { method: 'vanilla' }, c);
            if (c.stopIds) expect(reference.stopReason, c.name).to.equal('stop-token');
            for (const method of METHODS.filter((m) => m !== 'vanilla')) {
              const result = await run(model, settingsFor(method, variant), c);
              expect(result.tokens, `${method} / ${c.name}`).to.deep.equal(reference.tokens);
              expect(result.stopReason, `${method} / ${c.name}`).to.equal(reference.stopReason);
            }
          }
        });
      }
    });
  }

  it('stops at the context length like vanilla', async () => {
    const dir = models[Object.keys(sets)[0]].dir;
    const short = await EngineModel.open(dir, { ep: 'cpu', threads: 1, contextLength: 24 });
    try {
      const c = { name: 'context', prompt: SHORT_PROMPT, maxNewTokens: 100 };
      const reference = await run(short, { method: 'vanilla' }, c);
      expect(reference.stopReason).to.equal('context-length');
      expect(reference.tokens).to.have.lengthOf(24 - SHORT_PROMPT.length);
      for (const method of METHODS) expect((await run(short, settingsFor(method, 'default'), c)).tokens, method).to.deep.equal(reference.tokens);
    } finally {
      await short.release();
    }
  });

  it('drafts are both accepted and rejected in every method (mimicking drafts)', async () => {
    const model = models[Object.keys(sets)[0]];
    for (const method of METHODS.filter((m) => m !== 'vanilla')) {
      const perCycle: number[] = [];
      const taus: number[] = [];
      for (const variant of ['default', 'small'] as const) {
        for (const prompt of [SHORT_PROMPT, LONG_PROMPT]) {
          const generator = await Generator.create(model, settingsFor(method, variant, WIDE_SUBSET));
          const lengths: number[] = [];
          const result = await generator.generate(prompt, { maxNewTokens: 60, onTokens: (ids) => lengths.push(ids.length) });
          perCycle.push(...lengths.slice(1));
          taus.push(result.stats.meanAcceptanceLength);
        }
      }
      const label = `${method}: τ ${taus.map((t) => t.toFixed(2)).join(', ')}`;
      expect(Math.max(...taus), label).to.be.above(1.2);
      expect(perCycle.some((n) => n === 1), `${label}: no cycle rejected every draft`).to.equal(true);
      expect(perCycle.some((n) => n >= 3), `${label}: no cycle accepted two drafts`).to.equal(true);
    }
  });

  it('reports forwards, τ and bytes moved', async () => {
    const model = models[Object.keys(sets)[0]];
    const vanilla = await run(model, { method: 'vanilla' }, { name: '', prompt: LONG_PROMPT, maxNewTokens: 20 });
    expect(vanilla.stats).to.include({ method: 'vanilla', promptTokens: 300, newTokens: 20, meanAcceptanceLength: 1, cycles: 19, targetForwards: 2 + 19, draftForwards: 0, headRuns: 0 });
    expect(vanilla.stats.bytesMoved).to.be.above(0);
    const eagle = await run(model, settingsFor('eagle2', 'small'), { name: '', prompt: LONG_PROMPT, maxNewTokens: 20 });
    expect(eagle.stats.targetForwards).to.equal(2 + eagle.stats.cycles);
    expect(eagle.stats.meanAcceptanceLength).to.be.closeTo(19 / eagle.stats.cycles, 1e-9);
    // Per drafted tree: depth head runs and depth − 1 expansion forwards; then one encoding forward per
    // verified cycle but the last, after two for the prompt.
    expect(eagle.stats.headRuns).to.equal(3 * eagle.stats.cycles);
    expect(eagle.stats.draftForwards).to.equal(2 * eagle.stats.cycles + 2 + eagle.stats.cycles - 1);
    const { draft, verify, host, total } = eagle.stats.milliseconds;
    expect(draft + verify + host).to.be.closeTo(total, 1e-6);
  });
});
