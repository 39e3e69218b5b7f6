/**
 * The shipped demo models (a real 128,256-token Llama-3-tokenizer model set, models/demo): greedy output of every
 * method equals vanilla decoding token for token, with FR-Spec drafting from the shipped 32k subset.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Generator, METHODS, type Method } from '../../src/engine/engine.js';
import { EngineModel } from '../../src/engine/model.js';
import { readVocabMap } from '../../src/engine/vocab-map.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';

const DEMO = path.resolve(import.meta.dirname, '../../models/demo');
const PROMPTS = ['The history of the city begins', 'def fibonacci(n):\n', 'Question: what is the capital of France?\nAnswer:'];
const MAX_NEW_TOKENS = 40;

describe('engine on the demo models: every method equals vanilla (greedy, CPU)', function () {
  let model: EngineModel;
  let prompts: number[][];
  let stopIds: number[];
  const vanilla: number[][] = [];

  before(async function () {
    if (!existsSync(DEMO)) this.skip();
    const tokenizer = await loadTokenizer(DEMO);
    stopIds = tokenizer.info.stopIds;
    prompts = PROMPTS.map((p) => [tokenizer.info.bosId!, ...tokenizer.encode(p)]);
    model = await EngineModel.open(DEMO, { ep: 'cpu' });
    const generator = await Generator.create(model, { method: 'vanilla' });
    for (const prompt of prompts) vanilla.push((await generator.generate(prompt, { maxNewTokens: MAX_NEW_TOKENS, stopIds })).tokens);
  });
  after(async () => model?.release());

  for (const method of METHODS.filter((m): m is Method => m !== 'vanilla')) {
    it(method, async () => {
      const vocabSubset = method === 'fr-spec' ? readVocabMap(path.join(DEMO, 'vocab-maps/freq_32768.json'), { dir: DEMO, vocabSize: 128256 }).ids : undefined;
      const generator = await Generator.create(model, { method, vocabSubset: vocabSubset && Array.from(vocabSubset) });
      let accepted = 0;
      for (const [i, prompt] of prompts.entries()) {
        const result = await generator.generate(prompt, { maxNewTokens: MAX_NEW_TOKENS, stopIds });
        expect(result.tokens, `prompt ${i}`).to.deep.equal(vanilla[i]);
        accepted += result.stats.meanAcceptanceLength;
      }
      // the trained drafters agree with the target often enough that speculation commits several tokens per step
      expect(accepted / prompts.length).to.be.greaterThan(1.2);
    });
  }
});
