import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { runBench, type BenchRequest } from '../../src/bench/bench.js';
import { RECORDS_FILE } from '../../src/bench/store/result-store.js';
import type { PairRecord } from '../../src/bench/store/records.js';
import { UserError } from '../../src/util/errors.js';
import { BEHAVIOURS, FakeBackend } from './helpers/fake-backend.js';
import { makeTempDir, writeJsonl, writeModelFolder } from './helpers/model-folder.js';

const QUESTIONS = [
  { question_id: 1, category: 'writing', turns: ['Write a haiku about rain.'] },
  { question_id: 2, category: 'math', turns: ['What is 12 times 12?', 'And 13 times 13?'] },
  { question_id: 3, category: 'writing', turns: ['Describe a red door.'] },
];

describe('bench runner (fake methods, fake clocks)', function () {
  let tmp: string;
  let modelDir: string;
  let dataFile: string;
  let out: string;
  let backends: FakeBackend[];

  beforeEach(() => {
    tmp = makeTempDir();
    modelDir = writeModelFolder(path.join(tmp, 'model'));
    dataFile = writeJsonl(path.join(tmp, 'questions.jsonl'), QUESTIONS);
    out = path.join(tmp, 'out');
    backends = [];
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const request = (overrides: Partial<BenchRequest> = {}): BenchRequest => ({
    modelDir,
    dataset: { dataset: dataFile },
    methods: 'vanilla,eagle2,fr-spec:8',
    maxNewTokens: 32,
    temperature: 0,
    seed: 5,
    runs: 1,
    warmup: 2,
    ep: 'cpu',
    out,
    ...overrides,
  });

  const deps = (setup?: (backend: FakeBackend) => void, signal?: AbortSignal) => ({
    openBackend: async () => {
      const backend = new FakeBackend();
      setup?.(backend);
      backends.push(backend);
      return backend;
    },
    resolveDevice: (ep: 'cuda' | 'cpu' | 'auto') => ep,
    now: () => new Date('2026-01-02T03:04:05Z'),
    signal,
  });

  const storedRecords = (): PairRecord[] =>
    fs
      .readFileSync(path.join(out, RECORDS_FILE), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as PairRecord);

  it('warms up every method, then interleaves methods question by question in a rotating order', async function () {
    const outcome = await runBench(request(), deps());
    const [backend] = backends;
    expect(backend.created).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8']);
    const methodsCalled = backend.calls.map((c) => c.method);
    expect(methodsCalled.slice(0, 6)).to.deep.equal(['vanilla', 'vanilla', 'eagle2', 'eagle2', 'fr-spec:8', 'fr-spec:8']);
    // Question 1: vanilla, eagle2, fr-spec; question 2 (two turns each): eagle2, fr-spec, vanilla; question 3: fr-spec, vanilla, eagle2.
    expect(methodsCalled.slice(6)).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8', 'eagle2', 'eagle2', 'fr-spec:8', 'fr-spec:8', 'vanilla', 'vanilla', 'fr-spec:8', 'vanilla', 'eagle2']);
    expect(backend.calls[0].promptIds).to.deep.equal(backend.calls[6].promptIds);
    expect(backend.calls.every((c) => c.options.seed === 5 && c.options.maxNewTokens === 32 && c.options.temperature === 0)).to.equal(true);
    expect(backend.closed).to.equal(true);

    expect(outcome).to.include({ measured: 9, interrupted: false, resumed: 0 });
    expect(storedRecords()).to.have.length(9);
    for (const file of ['bench.json', 'results.jsonl', 'results.md', 'results.csv', 'results.json', 'speedup.svg']) expect(fs.existsSync(path.join(out, file)), file).to.equal(true);
    const all = outcome.summary.rows.filter((r) => r.category === 'all');
    expect(all.map((r) => r.method)).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8']);
    expect(all.every((r) => r.outputsEqual === true)).to.equal(true);
    expect(all[1].speedupVsVanilla).to.be.greaterThan(1);
    expect(outcome.summary.categories).to.deep.equal(['writing', 'math', 'all']);
  });

  it('feeds a second turn the method\'s own answer to the first', async function () {
    await runBench(request({ methods: 'vanilla', warmup: 0 }), deps());
    const calls = backends[0].calls;
    expect(calls).to.have.length(4);
    const record = storedRecords().find((r) => r.question === '2')!;
    const [first, second] = [calls[1].promptIds, calls[2].promptIds];
    expect(second.length).to.be.greaterThan(first.length + record.turns[0].text.length);
    expect(record.turns.map((t) => t.promptTokens)).to.deep.equal([first.length, second.length]);
  });

  it('resumes: a rerun skips finished pairs, more runs and new methods measure only what is missing', async function () {
    await runBench(request(), deps());
    const again = await runBench(request(), deps());
    expect(backends).to.have.length(1);
    expect(again).to.include({ measured: 0, resumed: 9 });

    const more = await runBench(request({ runs: 2, methods: 'vanilla,eagle2,fr-spec:8,sps' }), deps());
    // Run 2 of the three methods (9) and sps in both runs (6).
    expect(more).to.include({ measured: 15, resumed: 9 });
    const records = storedRecords();
    expect(records).to.have.length(24);
    expect(new Set(records.map((r) => `${r.method}|${r.question}|${r.run}`)).size).to.equal(24);
    expect(records.filter((r) => r.run === 2).every((r) => r.seed === 6)).to.equal(true);
    expect(backends[1].created).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8', 'sps']);
    expect(more.saved.meta.methods).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8', 'sps']);
    expect(more.saved.meta.runs).to.equal(2);
    expect(more.summary.questions.find((q) => q.method === 'vanilla')!.runs).to.equal(2);
  });

  it('stops between pairs when interrupted and goes on where it stopped', async function () {
    const abort = new AbortController();
    let timed = 0;
    const first = await runBench(
      request({ warmup: 0 }),
      deps((backend) => {
        backend.beforeGenerate = () => {
          if (++timed === 4) abort.abort();
        };
      }, abort.signal),
    );
    // The 4th generation (question 2's first turn for eagle2) still finishes its question; then the run stops.
    expect(first).to.include({ interrupted: true, measured: 4 });
    expect(storedRecords()).to.have.length(4);
    const second = await runBench(request({ warmup: 0 }), deps());
    expect(second).to.include({ interrupted: false, measured: 5, resumed: 4 });
    expect(new Set(storedRecords().map((r) => `${r.method}|${r.question}`)).size).to.equal(9);
  });

  it('drops a record cut short by a crash and measures that pair again', async function () {
    await runBench(request({ methods: 'vanilla', warmup: 0 }), deps());
    const file = path.join(out, RECORDS_FILE);
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, lines.slice(0, 2).join('\n') + '\n' + lines[2].slice(0, 40));
    const outcome = await runBench(request({ methods: 'vanilla', warmup: 0 }), deps());
    expect(outcome).to.include({ measured: 1, resumed: 2 });
    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).to.equal(true);
    expect(text.split('\n').filter(Boolean).map((l) => JSON.parse(l).question)).to.deep.equal(['1', '2', '3']);
  });

  it('refuses to mix models, questions, settings or devices in one output folder', async function () {
    await runBench(request({ methods: 'vanilla', warmup: 0 }), deps());
    const other = writeModelFolder(path.join(tmp, 'other'), { source: 'another-target' });
    const attempts: [Partial<BenchRequest>, RegExp][] = [
      [{ modelDir: other }, /holds results of another model \(.*model, config\.json sha256 [0-9a-f]{12}…; this one is [0-9a-f]{12}…\); use another --out/],
      [{ maxNewTokens: 64 }, /holds results made with other settings \(--max-new-tokens 32, now 64\); use another --out, or the same settings to resume/],
      [{ temperature: 0.7 }, /--temperature 0, now 0.7/],
      [{ system: 'Be brief.' }, /another prompt style or system prompt/],
      [{ ep: 'cuda' }, /measured on cpu, host engine, not cuda, fused engine/],
      [{ engine: 'fused' as const }, /measured on cpu, host engine, not cpu, fused engine/],
      [{ dataset: { dataset: writeJsonl(path.join(tmp, 'other.jsonl'), [{ prompt: 'x' }]) } }, /holds results for other questions/],
    ];
    for (const [overrides, pattern] of attempts) {
      let thrown: unknown;
      try {
        await runBench(request({ methods: 'vanilla', warmup: 0, ...overrides }), deps());
      } catch (error) {
        thrown = error;
      }
      expect(thrown, String(pattern)).to.be.instanceOf(UserError);
      expect((thrown as Error).message).to.match(pattern);
    }
    expect(backends).to.have.length(1);
    const busy = path.join(tmp, 'busy');
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    let thrown: unknown;
    try {
      await runBench(request({ out: busy }), deps());
    } catch (error) {
      thrown = error;
    }
    expect((thrown as Error).message).to.match(/busy exists and is not an output folder of fr-spec bench \(no bench\.json\); use a new or empty --out/);
  });

  it('ignores the seed when resuming greedy runs, not sampled ones', async function () {
    await runBench(request({ methods: 'vanilla', warmup: 0 }), deps());
    expect(await runBench(request({ methods: 'vanilla', warmup: 0, seed: 99 }), deps())).to.include({ measured: 0, resumed: 3 });
    const sampledOut = path.join(tmp, 'sampled');
    await runBench(request({ methods: 'vanilla', warmup: 0, temperature: 0.8, out: sampledOut }), deps());
    let thrown: unknown;
    try {
      await runBench(request({ methods: 'vanilla', warmup: 0, temperature: 0.8, out: sampledOut, seed: 99 }), deps());
    } catch (error) {
      thrown = error;
    }
    expect((thrown as Error).message).to.match(/--seed 5, now 99/);
  });

  it('reports outputs that differ from vanilla', async function () {
    const diverging = { ...BEHAVIOURS, eagle2: { ...BEHAVIOURS.eagle2, diverges: true } };
    const outcome = await runBench(request({ methods: 'vanilla,eagle2', warmup: 0 }), {
      ...deps(),
      openBackend: async () => new FakeBackend(diverging),
    });
    const eagleAll = outcome.summary.rows.find((r) => r.method === 'eagle2' && r.category === 'all')!;
    expect(eagleAll.outputsEqual).to.equal(false);
    expect(fs.readFileSync(path.join(out, 'results.md'), 'utf8')).to.match(/## Outputs that differ from vanilla\n\n- eagle2: /);
  });
});
