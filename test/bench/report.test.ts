import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import Papa from 'papaparse';
import { runBench, type BenchRequest } from '../../src/bench/bench.js';
import { summarize } from '../../src/bench/metrics.js';
import { compareLegend, compareTable, runLabels } from '../../src/bench/report/compare.js';
import { CSV_COLUMNS, summaryCsv } from '../../src/bench/report/csv.js';
import { summarizeSaved } from '../../src/bench/report/outputs.js';
import { niceStep, renderBarChart } from '../../src/bench/report/svg-bar-chart.js';
import { renderMarkdown, renderText } from '../../src/bench/report/table.js';
import { readSavedResults } from '../../src/bench/store/result-store.js';
import type { PairRecord } from '../../src/bench/store/records.js';
import { FakeBackend } from './helpers/fake-backend.js';
import { makeTempDir, writeJsonl, writeModelFolder } from './helpers/model-folder.js';

describe('bench reports', function () {
  let tmp: string;
  let request: BenchRequest;
  const deps = { openBackend: async () => new FakeBackend(), resolveDevice: (ep: 'cuda' | 'cpu' | 'auto') => ep, now: () => new Date('2026-01-02T03:04:05Z') };

  beforeEach(() => {
    tmp = makeTempDir();
    request = {
      modelDir: writeModelFolder(path.join(tmp, 'model')),
      dataset: {
        dataset: writeJsonl(path.join(tmp, 'q.jsonl'), [
          { question_id: 1, category: 'qa', turns: ['Why is ice slippery?'] },
          { question_id: 2, category: 'code', turns: ['Reverse a list in Python.', 'Now in place.'] },
        ]),
      },
      methods: 'vanilla,eagle2,fr-spec:8',
      maxNewTokens: 32,
      temperature: 0,
      seed: 0,
      runs: 1,
      warmup: 0,
      ep: 'cpu',
      out: path.join(tmp, 'run-a'),
    };
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes results.csv with one row per method and category plus an "all" row per method', async function () {
    await runBench(request, deps);
    const parsed = Papa.parse<Record<string, string>>(fs.readFileSync(path.join(tmp, 'run-a', 'results.csv'), 'utf8'), { header: true, skipEmptyLines: true });
    expect(parsed.meta.fields).to.deep.equal([...CSV_COLUMNS]);
    expect(parsed.meta.fields).to.deep.equal(['method', 'category', 'questions', 'new_tokens', 'tokens_per_s', 'tau', 'speedup_vs_vanilla', 'speedup_vs_eagle2', 'outputs_equal']);
    expect(parsed.data.map((r) => `${r.method}/${r.category}`)).to.deep.equal(['vanilla/qa', 'vanilla/code', 'vanilla/all', 'eagle2/qa', 'eagle2/code', 'eagle2/all', 'fr-spec:8/qa', 'fr-spec:8/code', 'fr-spec:8/all']);
    const vanillaAll = parsed.data[2];
    expect(vanillaAll).to.deep.include({ questions: '2', tau: '1', speedup_vs_vanilla: '1', outputs_equal: 'true' });
    expect(Number(parsed.data[5].speedup_vs_eagle2)).to.equal(1);
  });

  it('leaves empty CSV cells where a number does not apply', function () {
    const record: PairRecord = { method: 'sps', question: 'q', category: 'c', run: 1, seed: 0, turns: [{ promptTokens: 1, newTokens: 3, wallSeconds: 0.1, acceptLengths: [], targetForwards: 1, tokenIds: [1, 2, 3], text: '' }] };
    const csv = summaryCsv(summarize([record], { methods: ['sps'], categories: ['c'], greedy: false }));
    expect(csv).to.equal('method,category,questions,new_tokens,tokens_per_s,tau,speedup_vs_vanilla,speedup_vs_eagle2,outputs_equal\nsps,c,1,3,30,,,,\nsps,all,1,3,30,,,,\n');
  });

  it('keeps every question\'s numbers and outputs in results.json', async function () {
    await runBench(request, deps);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'run-a', 'results.json'), 'utf8'));
    expect(json.meta.model.source).to.equal('tiny-target');
    expect(json.summary).to.have.length(9);
    expect(json.questions.map((q: { id: string }) => q.id)).to.deep.equal(['1', '2']);
    const eagle = json.questions[1].methods.eagle2;
    expect(eagle).to.include.keys('tokensPerSecond', 'newTokens', 'tau', 'equalsVanilla', 'runs');
    expect(eagle.runs[0].turns).to.have.length(2);
    expect(eagle.runs[0].turns[1]).to.include.keys('text', 'tokenIds', 'acceptLengths', 'wallSeconds', 'newTokens', 'targetForwards', 'promptTokens');
  });

  it('writes results.md with the leaderboard view and the full table, and a speedup chart', async function () {
    await runBench(request, deps);
    const md = fs.readFileSync(path.join(tmp, 'run-a', 'results.md'), 'utf8');
    expect(md).to.match(/^# fr-spec bench: tiny-target on q, cpu/);
    expect(md).to.include('| method | qa | code | all |');
    expect(md).to.include('| method | category | questions | new tokens | tokens/s | τ | vs vanilla | vs eagle2 | equals vanilla |');
    expect(md).to.match(/\| vanilla \| 1\.00x \(1\.00\) \| 1\.00x \(1\.00\) \| 1\.00x \(1\.00\) \|/);
    const svg = fs.readFileSync(path.join(tmp, 'run-a', 'speedup.svg'), 'utf8');
    expect(svg).to.match(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // Two methods over vanilla × three groups (qa, code, all).
    expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="22"/g)).to.have.length(6);
    expect(svg).to.include('stroke-dasharray');
  });

  it('renders charts with round ticks, gaps for missing values and escaped text', function () {
    expect([niceStep(4.4), niceStep(1.2), niceStep(23)]).to.deep.equal([1, 0.5, 5]);
    const svg = renderBarChart({ title: 'A <b> & "c"', groups: ['x', 'y'], series: [{ name: 's', values: [2, null] }], yLabel: 'v' });
    expect(svg).to.include('A &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg.match(/<title>/g)).to.have.length(1);
  });

  it('renders aligned text and Markdown tables', function () {
    const table = { header: ['name', 'n'], rows: [['a|b', '1'], ['long name', '22']] };
    expect(renderText(table)).to.equal('name        n\n---------  --\na|b         1\nlong name  22\n');
    expect(renderMarkdown(table)).to.equal('| name | n |\n|---|---:|\n| a\\|b | 1 |\n| long name | 22 |\n');
  });

  it('compares saved runs side by side', async function () {
    await runBench(request, deps);
    await runBench({ ...request, methods: 'vanilla,eagle2', out: path.join(tmp, 'run-b') }, {
      ...deps,
      openBackend: async () => new FakeBackend({ vanilla: { steps: [1], stepSeconds: 0.005, prefillSeconds: 0.01 }, eagle2: { steps: [4], stepSeconds: 0.01, prefillSeconds: 0.01 } }),
    });
    const dirs = [path.join(tmp, 'run-a'), path.join(tmp, 'run-b')];
    const labels = runLabels(dirs);
    expect(labels).to.deep.equal(['run-a', 'run-b']);
    const runs = dirs.map((dir, i) => {
      const saved = readSavedResults(dir);
      return { label: labels[i], saved, summary: summarizeSaved(saved) };
    });
    const table = compareTable(runs);
    expect(table.header).to.deep.equal(['method', 'category', 'tok/s run-a', 'τ run-a', 'speedup run-a', 'tok/s run-b', 'τ run-b', 'speedup run-b', 'tok/s run-b / run-a']);
    expect(table.rows.map((r) => `${r[0]}/${r[1]}`)).to.deep.equal(['vanilla/qa', 'vanilla/code', 'vanilla/all', 'eagle2/qa', 'eagle2/code', 'eagle2/all', 'fr-spec:8/qa', 'fr-spec:8/code', 'fr-spec:8/all']);
    const vanillaAll = table.rows[2];
    const a = runs[0].summary.rows.find((r) => r.method === 'vanilla' && r.category === 'all')!.tokensPerSecond;
    const b = runs[1].summary.rows.find((r) => r.method === 'vanilla' && r.category === 'all')!.tokensPerSecond;
    expect(vanillaAll[8]).to.equal(`${(b / a).toFixed(2)}x`);
    expect(table.rows[8].slice(5)).to.deep.equal(['', '', '', '']);
    expect(compareLegend(runs)[0]).to.match(/^run-a: tiny-target on q, cpu, host engine \(greedy, max 32 new tokens, chat template, 1 run\(s\), 0 warm-up\)$/);
  });

  it('labels folders with the same base name by their paths', function () {
    expect(runLabels(['x/out', 'y/out', 'z'])).to.deep.equal([path.join('x', 'out'), path.join('y', 'out'), 'z']);
  });
});
