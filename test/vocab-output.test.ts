import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Papa from 'papaparse';
import { UserError } from '../src/util/errors.js';
import { countsCsv, freqJson, writeOutputDir } from '../src/vocab/output.js';
import { trackTempPath, untrackTempPath } from '../src/util/atomic-folder.js';
import { buildSubset, coverage, parseSizes, rankTokens } from '../src/vocab/rank.js';
import { decodeTorchIntList, encodeTorchIntList } from '../src/vocab/torch-pt.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function expectUserError(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a UserError').to.be.instanceOf(UserError);
  expect((thrown as UserError).message).to.equal(message);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

function hasPython(): boolean {
  return !spawnSync('python3', ['--version']).error;
}

describe('vocab ranking', () => {
  it('orders by count descending, ties by id ascending, zero counts last by id', () => {
    const counts = Float64Array.from([0, 5, 3, 5, 0, 9, 3]);
    expect(Array.from(rankTokens(counts))).to.deep.equal([5, 1, 3, 2, 6, 0, 4]);
  });

  it('rejects negative or non-finite counts', () => {
    expect(() => rankTokens([1, -1])).to.throw(RangeError);
    expect(() => rankTokens([1, NaN])).to.throw(RangeError);
  });
});

describe('vocab subsets', () => {
  // Ranked ids: 9 8 7 6 5 4 3 2 1 0 (id 9 most frequent).
  const counts = Float64Array.from({ length: 10 }, (_, id) => id + 1);
  const ranked = rankTokens(counts);

  it('keeps the top r when the required ids are already in it', () => {
    expect(Array.from(buildSubset(ranked, 4, [8, 7]))).to.deep.equal([9, 8, 7, 6]);
  });

  it('replaces the least frequent ids with missing required ids, in the order given', () => {
    expect(Array.from(buildSubset(ranked, 5, [0, 2]))).to.deep.equal([9, 8, 7, 0, 2]);
  });

  it('keeps a required id that sits at the cut-off when another one is missing', () => {
    // 6 is the 4th id; 0 is missing, so the least frequent non-required id (7) makes room.
    expect(Array.from(buildSubset(ranked, 4, [6, 0]))).to.deep.equal([9, 8, 6, 0]);
  });

  it('returns exactly r distinct ids, even with repeated required ids', () => {
    for (const r of [2, 3, 5, 10]) {
      const subset = buildSubset(ranked, r, [0, 1, 0]);
      expect(subset.length).to.equal(r);
      expect(new Set(subset).size).to.equal(r);
      expect(Array.from(subset)).to.include.members([0, 1]);
    }
  });

  it('rejects r smaller than the number of required ids, too large, or not a positive integer', () => {
    expectUserError(
      () => buildSubset(ranked, 1, [0, 1]),
      'subset size 1 is smaller than the number of stop tokens it must keep (2: 0, 1)',
    );
    expectUserError(() => buildSubset(ranked, 11, []), "subset size 11 is larger than the tokenizer's vocabulary (10)");
    expectUserError(() => buildSubset(ranked, 0, []), 'subset size 0 is not a positive integer');
    expectUserError(() => buildSubset(ranked, 2.5, []), 'subset size 2.5 is not a positive integer');
    expect(() => buildSubset(ranked, 3, [10])).to.throw(RangeError);
  });

  it('computes the share of occurrences a subset covers', () => {
    expect(coverage([1, 3, 0, 4], [1, 3])).to.equal(7 / 8);
    expect(coverage([1, 3, 0, 4], [])).to.equal(0);
    expect(coverage([0, 0], [0, 1])).to.equal(0);
  });
});

describe('--sizes parsing', () => {
  it('returns distinct sizes ascending', () => {
    expect(parseSizes('65536, 8192,32768,16384', 128256)).to.deep.equal([8192, 16384, 32768, 65536]);
    expect(parseSizes('128256', 128256)).to.deep.equal([128256]);
  });

  it('explains each kind of bad list', () => {
    const cases: [string, string][] = [
      ['', '--sizes: expected subset sizes separated by commas (e.g. 8192,16384,32768,65536), got an empty list'],
      ['8192,,16384', '--sizes: empty entry in "8192,,16384" (expected sizes separated by single commas)'],
      ['8192,abc', '--sizes: "abc" is not an integer'],
      ['1.5', '--sizes: "1.5" is not an integer'],
      ['8k', '--sizes: "8k" is not an integer'],
      ['0', '--sizes: 0 is not a positive subset size (sizes must be at least 1)'],
      ['-5', '--sizes: -5 is not a positive subset size (sizes must be at least 1)'],
      ['8192,16384,8192', '--sizes: 8192 is listed more than once'],
      ['8192,200000', "--sizes: 200000 is larger than the tokenizer's vocabulary (128256)"],
    ];
    for (const [text, message] of cases) expectUserError(() => parseSizes(text, 128256), message);
  });
});

/** Local file headers of a zip, walked from the start as a streaming reader would. */
function localEntries(zip: Uint8Array) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const entries: { name: string; method: number; dataOffset: number; size: number; extra: Uint8Array }[] = [];
  let offset = 0;
  while (view.getUint32(offset, true) === 0x04034b50) {
    const method = view.getUint16(offset + 8, true);
    const size = view.getUint32(offset + 18, true);
    const nameLength = view.getUint16(offset + 26, true);
    const extraLength = view.getUint16(offset + 28, true);
    const name = Buffer.from(zip.subarray(offset + 30, offset + 30 + nameLength)).toString('utf8');
    const extra = zip.subarray(offset + 30 + nameLength, offset + 30 + nameLength + extraLength);
    const dataOffset = offset + 30 + nameLength + extraLength;
    entries.push({ name, method, dataOffset, size, extra });
    offset = dataOffset + size;
  }
  return entries;
}

describe('torch .pt list files', () => {
  const samples: number[][] = [
    [],
    [7],
    [1, 2],
    [0, 255, 256, 65535, 65536, 128009, 2 ** 31 - 1],
    Array.from({ length: 2500 }, (_, i) => (i * 7919) % 128256),
  ];

  it('round-trips lists of every size class', () => {
    for (const ids of samples) expect(decodeTorchIntList(encodeTorchIntList(ids))).to.deep.equal(ids);
    expect(decodeTorchIntList(encodeTorchIntList(Int32Array.from([3, 1, 2]), 'freq_3'))).to.deep.equal([3, 1, 2]);
    // A Buffer that is a view into a larger allocation, as fs.readFileSync may return.
    const pt = encodeTorchIntList([70000, 5]);
    const view = Buffer.concat([Buffer.alloc(13), Buffer.from(pt)]).subarray(13);
    expect(decodeTorchIntList(view)).to.deep.equal([70000, 5]);
  });

  it('rejects ids that are not non-negative int32 values and bad archive names', () => {
    expect(() => encodeTorchIntList([1, -1])).to.throw(RangeError);
    expect(() => encodeTorchIntList([2 ** 31])).to.throw(RangeError);
    expect(() => encodeTorchIntList([1.5])).to.throw(RangeError);
    expect(() => encodeTorchIntList([1], 'a/b')).to.throw(RangeError);
    expect(() => encodeTorchIntList([1], '')).to.throw(RangeError);
  });

  it('lays out records like torch.save: one folder, stored, torch order, data 64-byte aligned', () => {
    const zip = encodeTorchIntList([5, 4, 3], 'freq_3');
    const entries = localEntries(zip);
    expect(entries.map((e) => e.name)).to.deep.equal([
      'freq_3/data.pkl',
      'freq_3/.format_version',
      'freq_3/.storage_alignment',
      'freq_3/byteorder',
      'freq_3/version',
      'freq_3/.data/serialization_id',
    ]);
    const text = (name: string) => {
      const e = entries.find((entry) => entry.name === `freq_3/${name}`)!;
      return Buffer.from(zip.subarray(e.dataOffset, e.dataOffset + e.size)).toString('latin1');
    };
    expect(text('version')).to.equal('3\n');
    expect(text('byteorder')).to.equal('little');
    expect(text('.format_version')).to.equal('1');
    expect(text('.storage_alignment')).to.equal('64');
    expect(text('.data/serialization_id')).to.match(/^\d{40}$/);
    for (const entry of entries) {
      expect(entry.method, entry.name).to.equal(0);
      expect(entry.dataOffset % 64, entry.name).to.equal(0);
      expect(Buffer.from(entry.extra.subarray(0, 2)).toString('latin1'), entry.name).to.equal('FB');
      expect(Buffer.from(entry.extra.subarray(4)).toString('latin1')).to.match(/^Z*$/);
    }
    expect(Buffer.from(encodeTorchIntList([5, 4, 3], 'freq_3')).equals(Buffer.from(zip)), 'deterministic').to.equal(true);
  });

  it("matches CPython's pickle byte for byte and opens with Python's zipfile", function () {
    if (!hasPython()) this.skip();
    const dir = mkdtempSync(path.join(tmpdir(), 'fr-spec-pt-'));
    try {
      samples.forEach((ids, i) => {
        writeFileSync(path.join(dir, `freq_${i}.pt`), encodeTorchIntList(ids, `freq_${i}`));
        writeFileSync(path.join(dir, `freq_${i}.json`), JSON.stringify(ids));
      });
      const script = [
        'import json, pickle, sys, zipfile',
        'd, n = sys.argv[1], int(sys.argv[2])',
        'for i in range(n):',
        '    ids = json.load(open(f"{d}/freq_{i}.json"))',
        '    with zipfile.ZipFile(f"{d}/freq_{i}.pt") as z:',
        '        assert z.testzip() is None',
        '        names = z.namelist()',
        '        assert names[0] == f"freq_{i}/data.pkl", names',
        '        assert all(n.startswith(f"freq_{i}/") for n in names), names',
        '        raw = z.read(f"freq_{i}/data.pkl")',
        '        loaded = pickle.loads(raw)',
        '        assert type(loaded) is list and all(type(x) is int for x in loaded)',
        '        assert loaded == ids, (i, loaded[:5], ids[:5])',
        '        assert raw == pickle.dumps(ids, protocol=2), i',
        '        assert z.read(f"freq_{i}/version") == b"3\\n"',
        'print("ok")',
      ].join('\n');
      const result = spawnSync('python3', ['-c', script, dir, String(samples.length)], { encoding: 'utf8' });
      expect(result.stderr).to.equal('');
      expect(result.stdout.trim()).to.equal('ok');
      expect(result.status).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('atomic output folders', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'fr-spec-out-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const files = () =>
    new Map<string, string | Uint8Array>([
      ['freq_2.json', '[1,2]\n'],
      ['freq_2.pt', new Uint8Array([1, 2, 3])],
      ['manifest.json', '{}\n'],
    ]);

  it('writes every file and leaves no temporary sibling, creating the parent folder', async () => {
    const outDir = path.join(root, 'nested', 'out');
    await writeOutputDir(outDir, files());
    expect(readdirSync(outDir).sort()).to.deep.equal(['freq_2.json', 'freq_2.pt', 'manifest.json']);
    expect(readFileSync(path.join(outDir, 'freq_2.json'), 'utf8')).to.equal('[1,2]\n');
    expect([...readFileSync(path.join(outDir, 'freq_2.pt'))]).to.deep.equal([1, 2, 3]);
    expect(readdirSync(path.join(root, 'nested'))).to.deep.equal(['out']);
  });

  it('refuses to replace an existing folder without force and leaves it untouched', async () => {
    const outDir = path.join(root, 'out');
    mkdirSync(outDir);
    writeFileSync(path.join(outDir, 'keep.txt'), 'old');
    const err = await rejection(writeOutputDir(outDir, files()));
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.equal(`output folder ${outDir} already exists; use --force to replace it`);
    expect(readdirSync(outDir)).to.deep.equal(['keep.txt']);
    expect(readdirSync(root)).to.deep.equal(['out']);
  });

  it('replaces an existing folder with force', async () => {
    const outDir = path.join(root, 'out');
    mkdirSync(outDir);
    writeFileSync(path.join(outDir, 'stale.txt'), 'old');
    await writeOutputDir(outDir, files(), { force: true });
    expect(readdirSync(outDir).sort()).to.deep.equal(['freq_2.json', 'freq_2.pt', 'manifest.json']);
    expect(readdirSync(root)).to.deep.equal(['out']);
  });

  it('leaves neither output nor temporary folder when a write fails midway', async () => {
    const outDir = path.join(root, 'out');
    // 'sub' is written as a file, so 'sub/x.json' cannot be created under it.
    const failing = new Map<string, string>([
      ['a.json', '1'],
      ['sub', 'plain file'],
      ['sub/x.json', '2'],
    ]);
    const err = await rejection(writeOutputDir(outDir, failing));
    expect(err).to.be.instanceOf(Error).and.not.instanceOf(UserError);
    expect(readdirSync(root)).to.deep.equal([]);
  });

  it('keeps the old folder when a forced replacement fails midway', async () => {
    const outDir = path.join(root, 'out');
    mkdirSync(outDir);
    writeFileSync(path.join(outDir, 'keep.txt'), 'old');
    const failing = new Map<string, string>([
      ['sub', 'plain file'],
      ['sub/x.json', '2'],
    ]);
    await rejection(writeOutputDir(outDir, failing, { force: true }));
    expect(readdirSync(root)).to.deep.equal(['out']);
    expect(readdirSync(outDir)).to.deep.equal(['keep.txt']);
  });

  it('rejects file names that would escape the folder', async () => {
    for (const name of ['../x', '/abs', '', 'a//b', './a']) {
      const err = await rejection(writeOutputDir(path.join(root, 'out'), new Map([[name, 'x']])));
      expect(err, name).to.be.instanceOf(RangeError);
    }
    expect(readdirSync(root)).to.deep.equal([]);
  });

  it('tracks and untracks temporary paths without touching untracked ones', () => {
    const dir = path.join(root, 'kept');
    mkdirSync(dir);
    trackTempPath(dir);
    untrackTempPath(dir);
    expect(existsSync(dir)).to.equal(true);
  });

  /** Runs ESM code in a child node process with tsx, giving it the output module's URL. */
  function runChild(code: string, tempDir: string) {
    const outputModule = pathToFileURL(path.join(repoRoot, 'src/util/atomic-folder.ts')).href;
    return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: { ...process.env, OUTPUT_MODULE: outputModule, TEMP_DIR: tempDir },
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  const childSetup = `
    import { mkdirSync, writeFileSync } from 'node:fs';
    const { trackTempPath } = await import(process.env.OUTPUT_MODULE);
    mkdirSync(process.env.TEMP_DIR);
    writeFileSync(process.env.TEMP_DIR + '/partial.json', '[1,');
    trackTempPath(process.env.TEMP_DIR);
  `;

  it('removes tracked temporary folders on SIGINT and exits with 130', () => {
    const tempDir = path.join(root, 'out.tmp-child');
    const result = runChild(
      `${childSetup}
      process.kill(process.pid, 'SIGINT');
      setTimeout(() => process.exit(7), 30_000);`,
      tempDir,
    );
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(130);
    expect(existsSync(tempDir)).to.equal(false);
  });

  it('removes tracked temporary folders when the process exits', () => {
    const tempDir = path.join(root, 'out.tmp-child');
    const result = runChild(`${childSetup}\nprocess.exitCode = 3;`, tempDir);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(3);
    expect(existsSync(tempDir)).to.equal(false);
  });
});

describe('count table and subset files', () => {
  it('writes every id in rank order with a header, quoting tokens that need it', () => {
    const counts = Float64Array.from([2, 0, 5, 1]);
    const tokens = ['a,b', 'never', 'say "hi"', ' lead'];
    const csv = countsCsv(rankTokens(counts), counts, (id) => tokens[id]);
    const lines = csv.split('\n');
    expect(lines[0]).to.equal('rank,token_id,count,token');
    expect(lines[1]).to.equal('1,2,5,"say ""hi"""');
    expect(lines[2]).to.equal('2,0,2,"a,b"');
    expect(lines[4]).to.equal('4,1,0,never');
    expect(csv.endsWith('\n') && !csv.includes('\r')).to.equal(true);
    const parsed = Papa.parse<Record<string, string>>(csv, { header: true, skipEmptyLines: true });
    expect(parsed.data.map((row) => row.token)).to.deep.equal(['say "hi"', 'a,b', ' lead', 'never']);
  });

  it('writes a subset as a JSON array of ids', () => {
    expect(freqJson(Int32Array.from([9, 8, 0]))).to.equal('[9,8,0]\n');
    expect(JSON.parse(freqJson([]))).to.deep.equal([]);
  });
});
