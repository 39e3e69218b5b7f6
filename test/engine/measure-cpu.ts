/**
 * Not a test: measures tokens/s and τ of every method on a tiny exported model with mimicking drafts.
 *   npx tsx test/engine/measure-cpu.ts [vocab=32] [hidden=32] [layers=2] [attention=0.3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, METHODS } from '../../src/engine/engine.js';
import { EngineModel } from '../../src/engine/model.js';
import { SeededRandom } from '../../src/engine/random.js';
import { writeModelSet } from './helpers/model-sets.js';

async function main(): Promise<void> {
  const [vocab = 32, hidden = 32, layers = 2, attention = 0.3] = process.argv.slice(2).map(Number);
  const random = new SeededRandom(5);
  const prompt = Array.from({ length: 64 }, () => Math.floor(random.uniform() * vocab));
  const root = mkdtempSync(join(tmpdir(), 'fr-spec-measure-'));
  try {
    const set = await writeModelSet(root, { vocabSize: vocab, hiddenSize: hidden, numLayers: layers, attention, seed: 3 });
    const model = await EngineModel.open(set.dir, { ep: 'cpu', threads: 1 });
    const subset = Array.from({ length: Math.max(1, Math.floor(vocab / 4)) }, (_, i) => i);
    for (const tree of [undefined, { depth: 4, topK: 4, tokens: 16 }]) {
      for (const method of METHODS) {
        if (tree && method !== 'eagle2' && method !== 'fr-spec') continue;
        const topK = tree?.topK ?? 10;
        if (method === 'fr-spec' && subset.length < topK) continue;
        const generator = await Generator.create(model, { method, tree, vocabSubset: method === 'fr-spec' ? subset : undefined });
        await generator.generate(prompt, { maxNewTokens: 16 }); // warm-up
        const { stats: s } = await generator.generate(prompt, { maxNewTokens: 128 });
        const ms = s.milliseconds;
        console.log(
          `${method}${tree ? ` ${tree.depth}/${tree.topK}/${tree.tokens}` : ''}: ${s.tokensPerSecond.toFixed(1)} tokens/s, τ ${s.meanAcceptanceLength.toFixed(2)}, ` +
            `forwards target ${s.targetForwards} draft ${s.draftForwards}, ms draft ${ms.draft.toFixed(0)} verify ${ms.verify.toFixed(0)} host ${ms.host.toFixed(0)}, ` +
            `${(s.bytesPerToken / 1024).toFixed(1)} KiB/token`,
        );
      }
    }
    await model.release();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

void main();
