/**
 * EAGLE drafting and the caches on an exported tiny model: FR-Spec trees hold only subset ids
 * (mapped back to full ids), a whole-vocabulary subset drafts the same tree as the full head, the
 * draft cache's scratch rows are dropped after drafting, and after speculative decoding the target
 * cache holds exactly the rows vanilla decoding computes (accepted rows compacted into place).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decoderGraph, eagleGraph, feedChain, KvDecoder } from '../../src/engine/decoder.js';
import { RunMeter } from '../../src/engine/meter.js';
import { TokenChooser, type MethodContext } from '../../src/engine/methods/context.js';
import { draftTree, runEagle, type TreeShape } from '../../src/engine/methods/eagle.js';
import { runOuroboros } from '../../src/engine/methods/ouroboros.js';
import { runSps } from '../../src/engine/methods/sps.js';
import { runVanilla } from '../../src/engine/methods/vanilla.js';
import { EngineModel } from '../../src/engine/model.js';
import { PhrasePool } from '../../src/engine/phrase-pool.js';
import { SeededRandom } from '../../src/engine/random.js';
import { GREEDY } from '../../src/engine/sampling.js';
import { Transcript } from '../../src/engine/transcript.js';
import { floatDataToFloat32 } from '../../src/model/float-data.js';
import { expectClose } from '../model/helpers/reference-math.js';
import { writeModelSet } from './helpers/model-sets.js';

const VOCAB = 32;
const PROMPT = [1, 9, 4, 22, 13, 7];
const SHAPE: TreeShape = { depth: 4, topK: 3, tokens: 10 };

describe('engine: EAGLE drafting and KV caches (tiny model, CPU)', () => {
  let root: string;
  let model: EngineModel;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-engine-draft-'));
    model = await EngineModel.open((await writeModelSet(root, { vocabSize: VOCAB, attention: 0.5, seed: 13 })).dir, { ep: 'cpu', threads: 1 });
  });
  after(async () => {
    await model?.release();
    rmSync(root, { recursive: true, force: true });
  });

  function context(maxNewTokens: number): MethodContext {
    const meter = new RunMeter();
    const random = new SeededRandom(0);
    return {
      transcript: new Transcript(PROMPT, { maxNewTokens, stopIds: [], contextLength: 4096 }),
      meter,
      random,
      target: new KvDecoder(decoderGraph(model.sessions.target), meter, 'target', 'verify'),
      targetChoice: new TokenChooser(GREEDY, random, meter, 'verify'),
    };
  }

  /** The EAGLE head after the prompt: its cache and the root's output. */
  async function primedEagle() {
    const meter = new RunMeter();
    const target = new KvDecoder(decoderGraph(model.sessions.target), meter, 'target', 'verify');
    const prefill = await feedChain(target, PROMPT, { keepStates: true });
    const root = Number(prefill.last.argmax![prefill.last.nodes - 1]);
    const eagle = new KvDecoder(eagleGraph(model.sessions.eagle!), meter, 'draft', 'draft');
    const encoded = await feedChain(eagle, [...PROMPT.slice(1), root], { feature: prefill.states });
    return { eagle, meter, root, rootOut: eagle.state(encoded.last, encoded.last.nodes - 1) };
  }

  it('drafts a tree of the requested size and drops its scratch rows from the head\'s cache', async () => {
    const { eagle, meter, root, rootOut } = await primedEagle();
    const before = eagle.length;
    const { tree } = await draftTree(eagle, model.sessions.head, meter, rootOut, root, SHAPE);
    expect(eagle.length).to.equal(before);
    expect(tree.tokens).to.have.lengthOf(SHAPE.tokens);
    expect(tree.tokens[0]).to.equal(root);
    expect(meter.runs.draft, "one prompt encoding, then depth − 1 expansions").to.equal(1 + SHAPE.depth - 1);
    expect(meter.runs.head).to.equal(SHAPE.depth);
  });

  it('FR-Spec: drafts only subset ids, as full-vocabulary ids; a whole-vocabulary subset drafts the full head\'s tree', async () => {
    const subset = [30, 2, 17, 5, 11, 23, 8, 14, 29, 0, 20, 26];
    const { eagle, meter, root, rootOut } = await primedEagle();
    const subsetTree = await draftTree(eagle, await model.sessions.subsetHead(subset), meter, rootOut, root, SHAPE);
    for (const token of subsetTree.tree.tokens.slice(1)) expect(subset).to.include(token);
    const everything = Array.from({ length: VOCAB }, (_, i) => (i * 7 + 3) % VOCAB);
    const viaSubset = await draftTree(eagle, await model.sessions.subsetHead(everything), meter, rootOut, root, SHAPE);
    const viaFull = await draftTree(eagle, model.sessions.head, meter, rootOut, root, SHAPE);
    expect(viaSubset.tree).to.deep.equal(viaFull.tree);
  });

  it('after eagle2, sps and ouroboros the target cache equals vanilla\'s, row for row', async () => {
    const vanilla = context(40);
    await runVanilla(vanilla);
    const runs: [string, (ctx: MethodContext) => Promise<void>][] = [
      ['eagle2', (ctx) => runEagle(ctx, new KvDecoder(eagleGraph(model.sessions.eagle!), ctx.meter, 'draft', 'draft'), model.sessions.head, SHAPE)],
      ['sps', (ctx) => runSps(ctx, new KvDecoder(decoderGraph(model.sessions.draft!), ctx.meter, 'draft', 'draft'), new TokenChooser(GREEDY, ctx.random, ctx.meter, 'draft'), 3)],
      ['ouroboros', (ctx) => runOuroboros(ctx, new KvDecoder(decoderGraph(model.sessions.draft!), ctx.meter, 'draft', 'draft'), new PhrasePool(3, 8), { gamma: 3, suffixes: 2 })],
    ];
    for (const [name, run] of runs) {
      const ctx = context(40);
      await run(ctx);
      expect(ctx.transcript.tokens, name).to.deep.equal(vanilla.transcript.tokens);
      const rows = ctx.target.length;
      expect(rows, name).to.be.above(PROMPT.length + 20);
      for (let layer = 0; layer < 2; layer++) {
        for (const which of ['key', 'value'] as const) {
          const actual = Array.from({ length: rows }, (_, r) => Array.from(floatDataToFloat32(ctx.target.arena.row(layer, r, which)))).flat();
          const expected = Array.from({ length: rows }, (_, r) => Array.from(floatDataToFloat32(vanilla.target.arena.row(layer, r, which)))).flat();
          expectClose(actual, expected, 1e-4, `${name} layer ${layer} ${which}s`);
        }
      }
    }
  });
});
