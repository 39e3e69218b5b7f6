import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { LineSplitter, readCorpus, readDocuments } from '../src/corpus/read.js';
import { formatOf, resolveCorpus } from '../src/corpus/sources.js';
import type { CorpusDocument, CorpusFile, ReadOptions } from '../src/corpus/types.js';
import { BlockBoundaries, ZstdStream } from '../src/corpus/zstd.js';
import { UserError } from '../src/util/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(repoRoot, 'test/fixtures/corpus');
const embeddedCorpus = path.join(repoRoot, 'corpora');
const validationShard = path.resolve(repoRoot, '../shared/corpora/slimpajama-mix/validation-00000.jsonl.zst');

const jsonl = (...values: unknown[]): string => values.map((value) => `${JSON.stringify(value)}\n`).join('');
const doc = (text: string, setName?: string): unknown =>
  setName === undefined ? { text } : { text, meta: { redpajama_set_name: setName } };

async function collect(file: CorpusFile, opts?: ReadOptions): Promise<CorpusDocument[]> {
  const documents: CorpusDocument[] = [];
  for await (const document of readDocuments(file, opts)) documents.push(document);
  return documents;
}

async function fileOf(filePath: string): Promise<CorpusFile> {
  const [file] = await resolveCorpus([filePath]);
  return file;
}

async function expectUserError(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a UserError').to.be.instanceOf(UserError);
  const actual = (caught as UserError).message;
  if (typeof message === 'string') expect(actual).to.equal(message);
  else expect(actual).to.match(message);
  expect(actual).not.to.include('\n');
}

describe('corpus', () => {
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'fr-spec-corpus-'));
  });

  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function write(name: string, content: string | Uint8Array): Promise<string> {
    const filePath = path.join(tmp, name);
    await mkdir(path.dirname(filePath), { recursive: true });
    await writeFile(filePath, content);
    return filePath;
  }

  describe('formatOf', () => {
    it('recognises each corpus suffix, longest first', () => {
      expect(formatOf('/a/b.jsonl')).to.equal('jsonl');
      expect(formatOf('b.jsonl.gz')).to.equal('jsonl.gz');
      expect(formatOf('b.JSONL.ZST')).to.equal('jsonl.zst');
      expect(formatOf('b.txt')).to.equal('txt');
      expect(formatOf('b.txt.gz')).to.equal('txt.gz');
      expect(formatOf('b.txt.zst')).to.equal('txt.zst');
      expect(formatOf('b.json')).to.equal(undefined);
      expect(formatOf('b.gz')).to.equal(undefined);
      expect(formatOf('b.parquet')).to.equal(undefined);
    });
  });

  describe('resolveCorpus', () => {
    let tree: string;

    before(async () => {
      tree = path.join(tmp, 'tree');
      await write('tree/b.jsonl', jsonl(doc('b')));
      await write('tree/a/z.txt', 'z');
      await write('tree/a/y.jsonl.gz', gzipSync(jsonl(doc('y'))));
      await write('tree/a/deeper/x.txt.zst', await readFile(path.join(fixtures, 'doc.txt.zst')));
      await write('tree/README.md', '# not a corpus file');
      await write('tree/data.parquet', 'PAR1');
      await write('tree/empty/.keep', '');
    });

    it('describes a file with its absolute path, format and size', async () => {
      const relative = path.relative(process.cwd(), path.join(tree, 'b.jsonl'));
      const files = await resolveCorpus([relative]);
      expect(files).to.deep.equal([{ path: path.join(tree, 'b.jsonl'), format: 'jsonl', bytes: jsonl(doc('b')).length }]);
    });

    it('walks a directory recursively, keeps corpus suffixes only, sorted by path', async () => {
      const files = await resolveCorpus([tree]);
      expect(files.map((file) => path.relative(tree, file.path))).to.deep.equal([
        'a/deeper/x.txt.zst',
        'a/y.jsonl.gz',
        'a/z.txt',
        'b.jsonl',
      ]);
      expect(files.map((file) => file.format)).to.deep.equal(['txt.zst', 'jsonl.gz', 'txt', 'jsonl']);
    });

    it('expands a glob to sorted absolute paths', async () => {
      const files = await resolveCorpus([`${tree}/**/*.{jsonl,jsonl.gz,md}`]);
      expect(files.map((file) => file.path)).to.deep.equal([path.join(tree, 'a/y.jsonl.gz'), path.join(tree, 'b.jsonl')]);
    });

    it('keeps spec order and drops duplicates', async () => {
      const files = await resolveCorpus([path.join(tree, 'b.jsonl'), tree, `${tree}/*.jsonl`]);
      expect(files.map((file) => path.relative(tree, file.path))).to.deep.equal([
        'b.jsonl',
        'a/deeper/x.txt.zst',
        'a/y.jsonl.gz',
        'a/z.txt',
      ]);
    });

    it('reports a missing file', async () => {
      const missing = path.join(tmp, 'nope.jsonl');
      await expectUserError(resolveCorpus([missing]), `corpus file not found: ${missing}`);
    });

    it('reports an unsupported suffix with the accepted ones', async () => {
      const parquet = path.join(tree, 'data.parquet');
      await expectUserError(
        resolveCorpus([parquet]),
        `unsupported corpus file suffix: ${parquet} (accepted: .jsonl, .jsonl.gz, .jsonl.zst, .txt, .txt.gz, .txt.zst)`,
      );
    });

    it('reports a glob or a directory without corpus files', async () => {
      await expectUserError(resolveCorpus([`${tree}/*.parquet`]), /^no corpus files match .*\*\.parquet \(accepted: /);
      await expectUserError(resolveCorpus([path.join(tree, 'empty')]), /^no corpus files in directory .*empty \(accepted: /);
    });
  });

  describe('readDocuments', () => {
    const plainLines = jsonl(doc('first', 'RedPajamaC4'), doc('second', 'RedPajamaGithub'), doc('third'));

    it('reads JSONL: set names, "unknown" without meta, line numbers past blank lines, CRLF', async () => {
      const content = `\uFEFF${JSON.stringify(doc('a', 'S1'))}\r\n\r\n   \n${JSON.stringify(doc('b'))}\r\n${JSON.stringify(doc('c\r\n', 'S2'))}`;
      const file = await fileOf(await write('crlf.jsonl', content));
      const documents = await collect(file);
      expect(documents).to.deep.equal([
        { text: 'a', setName: 'S1', file: file.path, line: 1 },
        { text: 'b', setName: 'unknown', file: file.path, line: 4 },
        { text: 'c\r\n', setName: 'S2', file: file.path, line: 5 },
      ]);
    });

    it('reads .jsonl.gz and reports compressed bytes', async () => {
      const file = await fileOf(await write('plain.jsonl.gz', gzipSync(plainLines)));
      let bytes = 0;
      const documents = await collect(file, { onBytes: (n) => (bytes += n) });
      expect(documents.map((d) => [d.text, d.setName, d.line])).to.deep.equal([
        ['first', 'RedPajamaC4', 1],
        ['second', 'RedPajamaGithub', 2],
        ['third', 'unknown', 3],
      ]);
      expect(bytes).to.equal(file.bytes);
    });

    it('reads .jsonl.zst (written with --long=27) and reports compressed bytes', async () => {
      const file = await fileOf(path.join(fixtures, 'docs.jsonl.zst'));
      let bytes = 0;
      const documents = await collect(file, { onBytes: (n) => (bytes += n) });
      expect(documents.map((d) => [d.text, d.setName, d.line])).to.deep.equal([
        ['Grüße aus Köln — 日本語のテキスト 😀', 'RedPajamaC4', 1],
        ['def f(x):\n    return x * 2\n', 'RedPajamaGithub', 3],
        ['no meta here', 'unknown', 4],
      ]);
      expect(bytes).to.equal(file.bytes);
    });

    it('reads each text format as one "txt" document', async () => {
      const text = 'Ein Text über «Zeichen» — ünïcödé ✓\nsecond line\n';
      const paths = [
        await write('one.txt', `\uFEFF${text}`),
        await write('one.txt.gz', gzipSync(text)),
        path.join(fixtures, 'doc.txt.zst'),
      ];
      for (const filePath of paths) {
        expect(await collect(await fileOf(filePath))).to.deep.equal([{ text, setName: 'txt', file: filePath, line: 1 }]);
      }
    });

    it('yields nothing for empty files', async () => {
      expect(await collect(await fileOf(await write('empty.jsonl', '')))).to.deep.equal([]);
      expect(await collect(await fileOf(await write('empty.txt', '')))).to.deep.equal([]);
    });

    it('filters by set name', async () => {
      const file = await fileOf(await write('sets.jsonl', plainLines));
      const documents = await collect(file, { sets: new Set(['RedPajamaGithub', 'unknown']) });
      expect(documents.map((d) => d.text)).to.deep.equal(['second', 'third']);
      const txt = await fileOf(await write('sets.txt', 'x'));
      expect(await collect(txt, { sets: new Set(['RedPajamaC4']) })).to.deep.equal([]);
    });

    describe('bad lines', () => {
      const content = [
        JSON.stringify(doc('ok 1')),
        '{"text": "unterminated',
        JSON.stringify(doc('ok 2')),
        JSON.stringify({ meta: { redpajama_set_name: 'S' } }),
        '[1, 2]',
        JSON.stringify(doc('ok 3')),
      ].join('\n');

      it('fails on a malformed line, naming file and line', async () => {
        const file = await fileOf(await write('bad.jsonl', content));
        await expectUserError(
          collect(file),
          new RegExp(`^${file.path}:2: malformed JSON line \\(.+\\); use --skip-bad-lines to skip such lines$`),
        );
      });

      it('fails on a line without a string "text" field', async () => {
        const file = await fileOf(await write('notext.jsonl', `${JSON.stringify(doc('ok'))}\n{"text": 42}\n`));
        await expectUserError(collect(file), `${file.path}:2: expected a JSON object with a string "text" field`);
      });

      it('skips and reports bad lines with skipBadLines', async () => {
        const file = await fileOf(await write('skip.jsonl.gz', gzipSync(content)));
        const bad: Array<[string, number, string]> = [];
        const documents = await collect(file, {
          skipBadLines: true,
          onBadLine: (badFile, line, reason) => bad.push([badFile, line, reason]),
        });
        expect(documents.map((d) => [d.text, d.line])).to.deep.equal([
          ['ok 1', 1],
          ['ok 2', 3],
          ['ok 3', 6],
        ]);
        expect(bad.map(([badFile, line]) => [badFile, line])).to.deep.equal([
          [file.path, 2],
          [file.path, 4],
          [file.path, 5],
        ]);
        expect(bad[0][2]).to.match(/^malformed JSON line \(.+\)$/);
        expect(bad[1][2]).to.equal('expected a JSON object with a string "text" field');
      });
    });

    describe('damaged compressed files', () => {
      it('reports truncated gzip data with the file name', async () => {
        const compressed = gzipSync(plainLines.repeat(50));
        const file = await fileOf(await write('cut.jsonl.gz', compressed.subarray(0, compressed.length - 20)));
        await expectUserError(collect(file), new RegExp(`^${file.path}: corrupt or truncated gzip data \\(.+\\)$`));
      });

      it('reports data that is not gzip', async () => {
        const file = await fileOf(await write('fake.jsonl.gz', plainLines));
        await expectUserError(collect(file), new RegExp(`^${file.path}: corrupt or truncated gzip data \\(.+\\)$`));
      });

      it('reports truncated and corrupt zstd data with the file name', async () => {
        const compressed = await readFile(path.join(fixtures, 'docs.jsonl.zst'));
        const truncated = await fileOf(await write('cut.jsonl.zst', compressed.subarray(0, compressed.length - 30)));
        await expectUserError(collect(truncated), new RegExp(`^${truncated.path}: corrupt or truncated zstd data \\(.+\\)$`));
        const fake = await fileOf(await write('fake.txt.zst', 'not zstd at all, just text'));
        await expectUserError(collect(fake), new RegExp(`^${fake.path}: corrupt or truncated zstd data \\(.+\\)$`));
      });
    });

    it('reports a file that cannot be read, whatever its format', async () => {
      for (const format of ['jsonl', 'jsonl.gz', 'jsonl.zst', 'txt.gz'] as const) {
        const unreadable: CorpusFile = { path: tmp, format, bytes: 0 };
        await expectUserError(collect(unreadable), `cannot read corpus file ${tmp} (EISDIR)`);
      }
    });

    it('decodes multi-byte UTF-8 characters cut by chunk boundaries', async () => {
      // 3-byte characters on a line much longer than the 64 KiB gunzip output chunks: most cuts fall inside one.
      const text = `€uro ${'€𝄞ä'.repeat(40_000)} end`;
      const file = await fileOf(await write('long.jsonl.gz', gzipSync(jsonl(doc('short ✓'), doc(text, 'S'), doc('after')))));
      const documents = await collect(file);
      expect(documents.map((d) => d.text)).to.deep.equal(['short ✓', text, 'after']);
    });
  });

  describe('LineSplitter', () => {
    it('gives the same lines for every way of cutting the bytes in two or in single bytes', () => {
      const input = Buffer.from('αβγ\r\n\n日本 😀 x\nlast ✓');
      const expected = ['αβγ', '', '日本 😀 x', 'last ✓'];
      for (let cut = 0; cut <= input.length; cut++) {
        const splitter = new LineSplitter();
        const lines = [...splitter.push(input.subarray(0, cut)), ...splitter.push(input.subarray(cut)), ...splitter.end()];
        expect(lines, `cut at ${cut}`).to.deep.equal(expected);
      }
      const splitter = new LineSplitter();
      const lines = [...input].flatMap((byte) => splitter.push(Uint8Array.of(byte)));
      expect([...lines, ...splitter.end()]).to.deep.equal(expected);
    });

    it('does not invent a last line after a final line feed', () => {
      const splitter = new LineSplitter();
      expect(splitter.push(Buffer.from('a\nb\n'))).to.deep.equal(['a', 'b']);
      expect(splitter.end()).to.deep.equal([]);
    });
  });

  describe('ZstdStream', () => {
    it('decodes skippable, empty, raw, RLE, 1 KiB-window and 128 MiB-window frames however the input is cut', async () => {
      const compressed = await readFile(path.join(fixtures, 'frames.zst'));
      for (const chunkBytes of [1, 5, 333, 4096, compressed.length]) {
        const zstd = new ZstdStream();
        const hash = createHash('sha256');
        let bytes = 0;
        const take = (blocks: Uint8Array[]) => blocks.forEach((block) => ((bytes += block.length), hash.update(block)));
        for (let start = 0; start < compressed.length; start += chunkBytes) {
          take(zstd.push(compressed.slice(start, start + chunkBytes)));
        }
        take(zstd.finish());
        expect([bytes, hash.digest('hex')], `chunks of ${chunkBytes} bytes`).to.deep.equal([
          1_168_893,
          'a0bb60907f9f3b71c0b32003afc057a5d1a6cc4ca9d251bd8a5d82cae9c682cc',
        ]);
      }
    });

    it('finds block ends from the framing alone', async () => {
      // One frame, one block, then the 4-byte checksum.
      const compressed = await readFile(path.join(fixtures, 'doc.txt.zst'));
      expect(new BlockBoundaries().scan(compressed)).to.deep.equal([compressed.length - 4]);
      const byteByByte = new BlockBoundaries();
      const ends = [...compressed].flatMap((byte, offset) => byteByByte.scan(Uint8Array.of(byte)).map(() => offset + 1));
      expect(ends).to.deep.equal([compressed.length - 4]);
    });
  });

  describe('readCorpus', () => {
    it('reads files in the given order', async () => {
      const first = await fileOf(await write('order/2.jsonl', jsonl(doc('from 2'))));
      const second = await fileOf(await write('order/1.txt', 'from 1'));
      const texts: string[] = [];
      for await (const document of readCorpus([first, second])) texts.push(document.text);
      expect(texts).to.deep.equal(['from 2', 'from 1']);
    });

    it('stops reading when the consumer stops', async () => {
      const content = jsonl(...Array.from({ length: 1000 }, (_, i) => doc(`doc ${i}`)));
      for (const [name, bytesOnDisk] of [['many.jsonl', content], ['many.jsonl.gz', gzipSync(content)]] as const) {
        const file = await fileOf(await write(name, bytesOnDisk));
        let bytes = 0;
        for await (const document of readCorpus([file, file], { onBytes: (n) => (bytes += n) })) {
          if (document.line === 10) break;
        }
        expect(bytes, name).to.equal(file.bytes);
      }
    });
  });

  describe('SlimPajama validation shard', () => {
    it('has 528 documents in 7 sets, decoded exactly', async function () {
      if (!existsSync(validationShard)) this.skip();
      const file = await fileOf(validationShard);
      const counts = new Map<string, number>();
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const document of readDocuments(file, { onBytes: (n) => (bytes += n) })) {
        counts.set(document.setName, (counts.get(document.setName) ?? 0) + 1);
        hash.update(document.text).update('\0');
      }
      expect(Object.fromEntries([...counts].sort())).to.deep.equal({
        RedPajamaArXiv: 36,
        RedPajamaBook: 10,
        RedPajamaC4: 185,
        RedPajamaCommonCrawl: 65,
        RedPajamaGithub: 107,
        RedPajamaStackExchange: 36,
        RedPajamaWikipedia: 89,
      });
      expect(hash.digest('hex')).to.equal('b1bb739536aa7ce4e5e837e4de09f05975b4cb9845a90cbe167d547a9c5e81d6');
      expect(bytes).to.equal(file.bytes);
    });
  });

  describe('embedded default corpus', () => {
    it('is one JSONL file of 493 documents in three sets', async () => {
      const files = await resolveCorpus([embeddedCorpus]);
      expect(files.map((file) => path.relative(embeddedCorpus, file.path))).to.deep.equal(['sample.jsonl.gz']);
      const counts = new Map<string, number>();
      for await (const document of readCorpus(files)) counts.set(document.setName, (counts.get(document.setName) ?? 0) + 1);
      expect(Object.fromEntries([...counts].sort())).to.deep.equal({ RedPajamaBook: 59, RedPajamaCommonCrawl: 43, RedPajamaGithub: 391 });
    });

    it('names the npm source and the license of every document', async () => {
      const lines = gunzipSync(await readFile(path.join(embeddedCorpus, 'sample.jsonl.gz'))).toString('utf8').trimEnd().split('\n');
      for (const line of lines) {
        const { meta } = JSON.parse(line) as { meta: { source: string; license: string } };
        expect(meta.source).to.match(/^npm:(@[\w.-]+\/)?[\w.-]+@\d+\.\d+\.\d+:\S+$/);
        expect(['CC0-1.0', 'MIT']).to.include(meta.license);
      }
    });
  });
});
