import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Papa from 'papaparse';
import { loadTokenizer, type LoadedTokenizer } from '../src/tokenizer/load.js';
import { resolveCorpus } from '../src/corpus/sources.js';
import { countCorpus } from '../src/vocab/parallel-count.js';
import { decodeTorchIntList } from '../src/vocab/torch-pt.js';

const REPO = path.resolve(import.meta.dirname, '..');
const BIN = path.join(REPO, 'bin', 'fr-spec');
const VALIDATION_SHARD = path.resolve(REPO, '../shared/corpora/slimpajama-mix/validation-00000.jsonl.zst');
const TRAIN_SHARD = path.resolve(REPO, '../shared/corpora/slimpajama-mix/train-00000.jsonl.zst');

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], opts: { cwd?: string; onSpawn?: (pid: number) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    opts.onSpawn?.(child.pid!);
  });
}

const DOCS = [
  { text: 'The quick brown fox jumps over the lazy dog. The dog sleeps.', meta: { redpajama_set_name: 'RedPajamaWikipedia' } },
  { text: 'def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n', meta: { redpajama_set_name: 'RedPajamaGithub' } },
  { text: "Das ist ein Satz. C'est la vie! 東京は日本の首都です。 🙂👍🏽", meta: { redpajama_set_name: 'RedPajamaC4' } },
  { text: 'The the the THE the. Frequency ranks tokens; the most frequent come first.', meta: { redpajama_set_name: 'RedPajamaWikipedia' } },
];

function writeJsonl(file: string, lines: string[]): void {
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

function referenceCounts(tok: LoadedTokenizer, texts: string[]): Float64Array {
  const counts = new Float64Array(tok.info.vocabSize);
  for (const t of texts) for (const id of tok.encode(t)) counts[id]++;
  return counts;
}

function readCountsCsv(file: string): Map<number, number> {
  const parsed = Papa.parse<Record<string, string>>(fs.readFileSync(file, 'utf8'), { header: true, skipEmptyLines: true });
  return new Map(parsed.data.map((row) => [Number(row.token_id), Number(row.count)]));
}

describe('fr-spec build-vocab (CLI)', function () {
  let tmp: string;
  let tok: LoadedTokenizer;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fr-spec-bv-'));
    tok = await loadTokenizer('llama3');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const outputLeftovers = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('out'));

  it('writes subsets, counts, .pt files and a manifest whose counts equal plain encoding', async () => {
    const dir = path.join(tmp, 'ok');
    fs.mkdirSync(dir);
    writeJsonl(path.join(dir, 'a.jsonl'), DOCS.slice(0, 2).map((d) => JSON.stringify(d)));
    fs.writeFileSync(path.join(dir, 'b.jsonl.gz'), zlib.gzipSync(DOCS.slice(2).map((d) => JSON.stringify(d)).join('\n') + '\n'));
    const out = path.join(dir, 'out');
    const res = await runCli(['build-vocab', '--corpus', dir, '--sizes', '64,128', '--workers', '2', '--out', out]);
    expect(res.stderr).to.equal('');
    expect(res.code).to.equal(0);
    expect(res.stdout).to.match(/counted \d+ tokens in 4 documents/);

    const expected = referenceCounts(tok, DOCS.map((d) => d.text));
    const csv = readCountsCsv(path.join(out, 'counts.csv'));
    expect(csv.size).to.equal(tok.info.vocabSize);
    for (let id = 0; id < expected.length; id++) if (expected[id] !== (csv.get(id) ?? -1)) expect.fail(`count of id ${id}`);

    for (const r of [64, 128]) {
      const ids: number[] = JSON.parse(fs.readFileSync(path.join(out, `freq_${r}.json`), 'utf8'));
      expect(ids).to.have.length(r);
      expect(new Set(ids).size).to.equal(r);
      for (const stop of tok.info.stopIds) expect(ids).to.include(stop);
      expect(decodeTorchIntList(fs.readFileSync(path.join(out, `freq_${r}.pt`)))).to.deep.equal(ids);
      // most frequent first: counts never increase along the list, except for the appended stop ids
      const ranked = ids.filter((id) => !tok.info.stopIds.includes(id) || expected[id] > 0);
      for (let i = 1; i < ranked.length; i++) expect(expected[ranked[i]]).to.be.at.most(expected[ranked[i - 1]]);
    }

    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.tokenizer.vocab_size).to.equal(128256);
    expect(manifest.tokenizer.sha256).to.equal(tok.info.sha256);
    expect(manifest.corpus.documents).to.equal(4);
    const total = expected.reduce((a, b) => a + b, 0);
    expect(manifest.corpus.tokens).to.equal(total);
    expect(manifest.corpus.per_set.RedPajamaWikipedia.documents).to.equal(2);
    expect(manifest.corpus.per_set.RedPajamaGithub.tokens).to.equal(tok.encode(DOCS[1].text).length);
    expect(manifest.counting.route).to.equal('fast');
    const s128 = manifest.subsets.find((s: { size: number }) => s.size === 128);
    const ids128: number[] = JSON.parse(fs.readFileSync(path.join(out, 'freq_128.json'), 'utf8'));
    expect(s128.coverage).to.be.closeTo(ids128.reduce((a, id) => a + expected[id], 0) / total, 1e-6);
    expect(outputLeftovers(dir)).to.deep.equal(['out']);
  });

  it('--special bos counts one BOS per document; --sets filters; --eval reports held-out coverage', async () => {
    const dir = path.join(tmp, 'bos');
    fs.mkdirSync(dir);
    const corpus = path.join(dir, 'c.jsonl');
    writeJsonl(corpus, DOCS.map((d) => JSON.stringify(d)));
    const out = path.join(dir, 'out');
    const res = await runCli(['build-vocab', '--corpus', corpus, '--sizes', '32', '--special', 'bos', '--sets', 'RedPajamaWikipedia',
      '--eval', corpus, '--workers', '1', '--out', out, '--quiet']);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal('');
    const csv = readCountsCsv(path.join(out, 'counts.csv'));
    expect(csv.get(tok.info.bosId!)).to.equal(2);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(Object.keys(manifest.corpus.per_set)).to.deep.equal(['RedPajamaWikipedia']);
    expect(manifest.eval.documents).to.equal(2); // --sets applies to the held-out corpus too
    expect(manifest.subsets[0].eval_coverage).to.be.within(0, 1);
  });

  describe('bad input: one clear line, non-zero exit, no output folder', () => {
    const cases: { name: string; lines?: string[]; args: (corpus: string) => string[]; message: RegExp }[] = [
      { name: 'missing corpus file', args: () => ['--corpus', path.join(os.tmpdir(), 'no-such-corpus.jsonl')], message: /no-such-corpus\.jsonl/ },
      { name: 'malformed JSON line', lines: [JSON.stringify(DOCS[0]), '{"text": "broken'], args: (c) => ['--corpus', c], message: /c\.jsonl:2: malformed JSON/ },
      { name: 'line without text', lines: [JSON.stringify({ meta: {} })], args: (c) => ['--corpus', c], message: /c\.jsonl:1: .*"text"/ },
      { name: 'empty corpus after --sets', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--sets', 'RedPajamaBook'], message: /no documents/ },
      { name: 'zero size', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--sizes', '0,64'], message: /--sizes/ },
      { name: 'duplicated size', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--sizes', '64,64'], message: /--sizes.*64/ },
      { name: 'size above the vocabulary', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--sizes', '200000'], message: /128256/ },
      { name: 'tokenizer folder without tokenizer.json', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--tokenizer', path.dirname(c)], message: /tokenizer\.json/ },
      { name: 'bad --workers', lines: [JSON.stringify(DOCS[0])], args: (c) => ['--corpus', c, '--workers', 'two'], message: /--workers/ },
    ];
    for (const tc of cases) {
      it(tc.name, async () => {
        const dir = fs.mkdtempSync(path.join(tmp, 'bad-'));
        const corpus = path.join(dir, 'c.jsonl');
        if (tc.lines) writeJsonl(corpus, tc.lines);
        const res = await runCli(['build-vocab', ...tc.args(corpus), '--out', path.join(dir, 'out')]);
        expect(res.code).to.not.equal(0);
        expect(res.stderr).to.match(tc.message);
        expect(res.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with')).length, res.stderr).to.equal(1);
        expect(res.stderr).to.not.match(/\n\s+at /);
        expect(outputLeftovers(dir)).to.deep.equal([]);
      });
    }

    it('--skip-bad-lines counts and skips malformed lines', async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'skip-'));
      const corpus = path.join(dir, 'c.jsonl');
      writeJsonl(corpus, [JSON.stringify(DOCS[0]), 'not json', JSON.stringify(DOCS[1])]);
      const out = path.join(dir, 'out');
      const res = await runCli(['build-vocab', '--corpus', corpus, '--sizes', '64', '--skip-bad-lines', '--out', out]);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/skipped 1 malformed line/);
      const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
      expect(manifest.counting.bad_lines_skipped).to.equal(1);
      expect(manifest.corpus.documents).to.equal(2);
    });

    it('an existing output folder is kept unless --force', async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'force-'));
      const corpus = path.join(dir, 'c.jsonl');
      writeJsonl(corpus, [JSON.stringify(DOCS[0])]);
      const out = path.join(dir, 'out');
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'keep.txt'), 'x');
      const res = await runCli(['build-vocab', '--corpus', corpus, '--sizes', '64', '--out', out]);
      expect(res.code).to.not.equal(0);
      expect(res.stderr).to.match(/already exists.*--force/);
      expect(fs.readdirSync(out)).to.deep.equal(['keep.txt']);
      const forced = await runCli(['build-vocab', '--corpus', corpus, '--sizes', '64', '--out', out, '--force']);
      expect(forced.code, forced.stderr).to.equal(0);
      expect(fs.readdirSync(out).sort()).to.deep.equal(['counts.csv', 'freq_64.json', 'freq_64.pt', 'manifest.json']);
      expect(outputLeftovers(dir)).to.deep.equal(['out']);
    });

    it('Ctrl-C while counting leaves no output', async function () {
      // A train shard (98 MB of text) takes far longer than the 4 s before the signal on any machine; the
      // validation shard alone can finish first on an idle one.
      const shard = [TRAIN_SHARD, VALIDATION_SHARD].find((f) => fs.existsSync(f));
      if (!shard) this.skip();
      const dir = fs.mkdtempSync(path.join(tmp, 'sigint-'));
      const out = path.join(dir, 'out');
      let pid = 0;
      const running = runCli(['build-vocab', '--corpus', shard!, '--route', 'reference', '--workers', '1', '--out', out], {
        onSpawn: (p) => (pid = p),
      });
      await new Promise((r) => setTimeout(r, 4000));
      process.kill(pid, 'SIGINT');
      const res = await running;
      expect(res.code).to.equal(130);
      expect(outputLeftovers(dir)).to.deep.equal([]);
    });
  });
});

describe('fast counting equals plain encoding on the shared validation shard', function () {
  it('llama3: identical count vectors and totals (fast vs reference route)', async function () {
    if (!fs.existsSync(VALIDATION_SHARD)) this.skip();
    const tok = await loadTokenizer('llama3');
    const files = await resolveCorpus([VALIDATION_SHARD]);
    const run = (route: 'fast' | 'reference') =>
      countCorpus({ tokenizer: 'llama3', vocabSize: tok.info.vocabSize, files, workers: 2, route });
    const fast = await run('fast');
    const reference = await run('reference');
    expect(fast.route).to.equal('fast');
    expect(reference.route).to.equal('reference');
    expect(fast.documents).to.equal(528);
    expect(fast.tokens).to.equal(reference.tokens);
    const mismatches = fast.counts.filter((c, id) => c !== reference.counts[id]).length;
    expect(mismatches).to.equal(0);
    for (const [set, tally] of reference.perSet) expect(fast.perSet.get(set)).to.deep.equal(tally);
  });
});
