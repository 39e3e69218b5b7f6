/**
 * The fused loops run every forward at the host engine's shapes (docs/fused-loop.md, "Exact shapes"):
 * caches at their exact length, batches padded to bucketSize rows. The CPU tests cannot see a shape
 * difference in the tokens (its kernels round the same either way), so this reads the shapes each
 * inlined graph was run with from onnxruntime's profile of the loop session.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bucketSize } from '../../src/engine/buckets.js';
import { FusedEagle } from '../../src/engine/fused/fused-eagle.js';
import { FusedVanilla } from '../../src/engine/fused/fused-vanilla.js';
import { EngineModel } from '../../src/engine/model.js';
import { FUSED_MODEL_SETS, tinyFusedModelSets } from './helpers/fused-cases.js';

interface NodeEvent {
  name: string;
  args: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] };
}

/** The Loop body's node events of every profile in `dir`. */
function nodeEvents(dir: string): NodeEvent[] {
  return readdirSync(dir).flatMap((file) => (JSON.parse(readFileSync(join(dir, file), 'utf8')) as (NodeEvent & { cat?: string })[]).filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')));
}

const shapesOf = (entries: Record<string, number[]>[] | undefined) => (entries ?? []).map((entry) => Object.values(entry)[0]);
const inputShapes = (e: NodeEvent) => shapesOf(e.args.input_type_shape);

/** A Concat along axis 1 (rows) of two inputs: the cache and the new rows. */
function appendsRows(e: NodeEvent): boolean {
  const [past, rows] = inputShapes(e);
  const [out] = shapesOf(e.args.output_type_shape);
  return e.args.op_name === 'Concat' && rows !== undefined && out !== undefined && out[1] === past[1] + rows[1] && out.at(-1) === past.at(-1);
}

/** Per run of an inlined graph (node names `<call>/…`): the rows of its input_ids, read off its embedding Gather. */
function rowsFed(events: NodeEvent[], call: RegExp): number[] {
  return events.filter((e) => call.test(e.name.split('/')[0]) && e.args.op_name === 'Gather' && /embedding\/Gather_kernel_time$/.test(e.name)).map((e) => {
    const ids = inputShapes(e).find((shape) => shape.length === 2 && shape[0] === 1)!;
    return ids[1];
  });
}

describe('fused loops: every forward has the host engine\'s shapes (onnxruntime profile, CPU)', function () {
  const dirs = tinyFusedModelSets('fr-spec-loop-shapes-');
  let profiles: string;
  beforeEach(() => {
    profiles = mkdtempSync(join(tmpdir(), 'fr-spec-profile-'));
  });
  afterEach(() => rmSync(profiles, { recursive: true, force: true }));

  for (const set of [FUSED_MODEL_SETS[0], FUSED_MODEL_SETS[3]]) {
    it(`vanilla (${set}): one token per step over a cache one row longer each step`, async () => {
      const model = await EngineModel.open(dirs[set], { ep: 'cpu', threads: 1 });
      const fused = await FusedVanilla.create(model, { threads: 1, profileDir: profiles });
      try {
        const prompt = [1, 5, 9, 3, 7];
        const result = await fused.generate(prompt, { maxNewTokens: 9 });
        await fused.endProfiling();
        const events = nodeEvents(profiles);
        expect(rowsFed(events, /^@step$/)).to.deep.equal(new Array(result.tokens.length - 1).fill(1));
        // The cache each step attends over: the first layer's past keys as its Concat with the new row reads them.
        const pastLengths = events.filter((e) => /^@step\/layers\.0\//.test(e.name) && appendsRows(e)).map((e) => inputShapes(e)[0][1]);
        const steps = result.tokens.length - 1;
        expect([...new Set(pastLengths)]).to.deep.equal(Array.from({ length: steps }, (_, i) => prompt.length + i));
      } finally {
        await fused.release();
        await model.release();
      }
    });

    it(`eagle (${set}): expansions, tree and catch-up padded to bucketSize rows, as the host pads them`, async () => {
      const model = await EngineModel.open(dirs[set], { ep: 'cpu', threads: 1 });
      const tree = { depth: 6, topK: 10, tokens: 60 };
      const fused = await FusedEagle.create(model, { tree, threads: 1, profileDir: profiles });
      try {
        const result = await fused.generate([1, 5, 9, 3, 7], { maxNewTokens: 20 });
        await fused.endProfiling();
        const events = nodeEvents(profiles);
        const cycles = result.stats.cycles;
        expect(cycles).to.be.above(1);
        const k = Math.min(tree.topK, model.config.lm_head.vocab_size);
        expect(rowsFed(events, /^@verify$/)).to.deep.equal(new Array(cycles).fill(bucketSize(tree.tokens)));
        expect(rowsFed(events, /^@eagle_expand_\d+$/)).to.deep.equal(new Array(cycles * (tree.depth - 1)).fill(bucketSize(k)));
        const catchUp = rowsFed(events, /^@eagle_catch_up$/);
        expect(catchUp).to.have.lengthOf(cycles);
        const buckets = new Set(Array.from({ length: tree.depth + 1 }, (_, n) => bucketSize(n + 1)));
        for (const rows of catchUp) expect(buckets.has(rows), `catch-up of ${rows} rows`).to.equal(true);
      } finally {
        await fused.release();
        await model.release();
      }
    });
  }
});
