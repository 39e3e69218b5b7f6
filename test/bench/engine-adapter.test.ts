/**
 * The bench over the real decoding engine: tiny exported models (the engine tests' model sets, whose
 * drafts agree with the target often) through openEngineBackend, on the CPU.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runBench, type BenchRequest } from '../../src/bench/bench.js';
import { openEngineBackend } from '../../src/bench/engine-adapter.js';
import { RECORDS_FILE } from '../../src/bench/store/result-store.js';
import type { PairRecord } from '../../src/bench/store/records.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { TINY_VOCAB_SIZE, tinyTokenizerFiles } from '../engine/helpers/tiny-tokenizer.js';
import { makeTempDir, writeJsonl } from './helpers/model-folder.js';

describe('bench over the decoding engine (tiny models, CPU)', function () {
  let root: string;
  let model: string;

  before(async function () {
    root = makeTempDir('fr-spec-bench-engine-');
    const files = tinyTokenizerFiles();
    const maps = path.join(root, 'maps');
    fs.mkdirSync(maps);
    fs.writeFileSync(path.join(maps, 'freq_16.json'), JSON.stringify(Array.from({ length: 16 }, (_, i) => (i * 3 + 2) % TINY_VOCAB_SIZE)));
    const sha256 = createHash('sha256').update(files['tokenizer.json']).digest('hex');
    fs.writeFileSync(path.join(maps, 'manifest.json'), JSON.stringify({ tokenizer: { name: 'tiny', sha256, vocab_size: TINY_VOCAB_SIZE } }));
    model = (await writeModelSet(path.join(root, 'set'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 21, tokenizerFiles: files, vocabMaps: maps })).dir;
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('measures every method; greedy outputs equal vanilla\'s, turn by turn', async function () {
    const out = path.join(root, 'out');
    const request: BenchRequest = {
      modelDir: model,
      dataset: {
        dataset: writeJsonl(path.join(root, 'prompts.jsonl'), [
          { question_id: 1, category: 'story', turns: ['once upon a time', 'and then'] },
          { question_id: 2, category: 'list', turns: ['abc def ghi'] },
        ]),
      },
      methods: 'vanilla,eagle2,fr-spec:16,sps,ouroboros',
      maxNewTokens: 12,
      temperature: 0,
      seed: 0,
      runs: 1,
      warmup: 1,
      ep: 'cpu',
      out,
    };
    const outcome = await runBench(request, { openBackend: openEngineBackend });
    expect(outcome).to.include({ measured: 10, interrupted: false });
    const all = outcome.summary.rows.filter((r) => r.category === 'all');
    expect(all.map((r) => r.method)).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:16', 'sps', 'ouroboros']);
    for (const row of all) expect(row.outputsEqual, row.method).to.equal(true);
    expect(all[0].tau).to.equal(1);

    const records = fs.readFileSync(path.join(out, RECORDS_FILE), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as PairRecord);
    for (const record of records) {
      for (const turn of record.turns) {
        expect(turn.newTokens).to.be.within(1, 12);
        expect(turn.tokenIds).to.have.length(turn.newTokens);
        // The first token comes from the prompt's forward; every later one from a decoding step.
        expect(turn.acceptLengths.reduce((a, b) => a + b, 0) + 1, record.method).to.equal(turn.newTokens);
        expect(turn.wallSeconds).to.be.greaterThan(0);
        expect(turn.targetForwards).to.be.at.least(1);
      }
    }
    const twoTurns = records.find((r) => r.method === 'vanilla' && r.question === '1')!;
    expect(twoTurns.turns[1].promptTokens).to.be.greaterThan(twoTurns.turns[0].promptTokens + twoTurns.turns[0].newTokens - 1);
  });

  /** One story question of two turns, greedy, 16 tokens, on the CPU with `engine`, into `root/out`. */
  const storyRun = (modelDir: string, methods: string, out: string, engine: 'host' | 'fused', extra: Partial<BenchRequest> = {}) =>
    runBench(
      {
        modelDir,
        dataset: { dataset: writeJsonl(path.join(root, `${out}-prompts.jsonl`), [{ question_id: 1, category: 'story', turns: ['once upon a time', 'and then'] }]) },
        methods,
        maxNewTokens: 16,
        temperature: 0,
        seed: 0,
        runs: 1,
        warmup: 0,
        ep: 'cpu',
        engine,
        out: path.join(root, out),
        ...extra,
      },
      { openBackend: openEngineBackend },
    );
  const sameRecords = (records: readonly PairRecord[], reference: readonly PairRecord[], what: (t: PairRecord['turns'][number]) => unknown) => {
    for (const record of records) {
      const expected = reference.find((r) => r.method === record.method && r.question === record.question)!;
      expect(record.turns.map(what), record.method).to.deep.equal(expected.turns.map(what));
    }
  };

  it('--engine fused: the same tokens and τ per turn as the host engine (ouroboros stays on the host)', async function () {
    const methods = 'vanilla,eagle2,fr-spec:16,sps,ouroboros';
    const host = await storyRun(model, methods, 'host', 'host');
    const fused = await storyRun(model, methods, 'fused', 'fused');
    expect(fused.saved.meta.device).to.match(/^cpu, fused engine/);
    expect(host.saved.meta.device).to.equal('cpu, host engine');
    sameRecords(fused.saved.records, host.saved.records, (t) => t.tokenIds);
    sameRecords(fused.saved.records, host.saved.records, (t) => t.acceptLengths);
  });

  it('--decode-attention gqa: vanilla\'s steps on GroupQueryAttention, the same tokens on both engines, recorded in the device', async function () {
    const fusedOps = (await writeModelSet(path.join(root, 'fused-ops'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 21, tokenizerFiles: tinyTokenizerFiles(), ops: 'fused', hiddenSize: 64 })).dir;
    const host = await storyRun(fusedOps, 'vanilla,eagle2', 'gqa-host', 'host', { decodeAttention: 'gqa' });
    const fused = await storyRun(fusedOps, 'vanilla,eagle2', 'gqa-fused', 'fused', { decodeAttention: 'gqa' });
    expect(host.saved.meta.device).to.equal('cpu, host engine, vanilla decode steps with GroupQueryAttention');
    expect(fused.saved.meta.device).to.match(/^cpu, fused engine .*, vanilla decode steps with GroupQueryAttention$/);
    expect(fused.saved.records).to.have.lengthOf(2);
    sameRecords(fused.saved.records, host.saved.records, (t) => t.tokenIds);
  });

  it('--reserve-rows: fused vanilla with reserved cache rows, the host engine\'s tokens, recorded in the device', async function () {
    const host = await storyRun(model, 'vanilla,eagle2', 'reserve-host', 'host');
    const fused = await storyRun(model, 'vanilla,eagle2', 'reserve-fused', 'fused', { reserveRows: true });
    expect(fused.saved.meta.device).to.match(/^cpu, fused engine.*, vanilla with reserved cache rows$/);
    sameRecords(fused.saved.records, host.saved.records, (t) => t.tokenIds);
  });
});
