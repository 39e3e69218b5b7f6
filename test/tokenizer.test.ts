import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BYTE_TO_CHAR } from '../src/tokenizer/byte-level-bpe.js';
import { createTokenCounter, type TokenCounterOptions } from '../src/tokenizer/fast-count.js';
import { loadTokenizer, PRESETS, type LoadedTokenizer } from '../src/tokenizer/load.js';
import { UserError } from '../src/util/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const samplePath = path.resolve(repoRoot, '../shared/corpora/sample/sample.jsonl');

function readSampleDocuments(limit: number): string[] {
  const lines = fs.readFileSync(samplePath, 'utf8').split('\n').filter((line) => line.trim() !== '');
  return lines.slice(0, limit).map((line) => (JSON.parse(line) as { text: string }).text);
}

/** Documents that stress pre-tokenization, normalization, byte-level encoding and added-token splitting. */
function buildStressDocuments(): string[] {
  const scripts = [
    'Héllo wörld, façade naïve Ærøskøbing señor ÇÀÉÎÕÜ ß ẞ',
    'Привет, как дела? Ёжик в тумане. ПРИВЕТ',
    'Γειά σου Κόσμε — ΑΒΓΔ αβγδ ς',
    'مرحبا بالعالم ١٢٣ ٤٥٦',
    'שלום עולם, עברית',
    'नमस्ते दुनिया, क्षत्रिय हिन्दी',
    'สวัสดีชาวโลก ภาษาไทย',
    '你好，世界！汉字測試。中文标点：“引号”',
    '안녕하세요 세계, 한국어 텍스트',
    'こんにちは世界 カタカナ ひらがな ｶﾀｶﾅ ー',
    // Llama-3 vocabulary words that merges alone do not reach (its BPE has ignore_merges).
    'Tiếng Việt: việc hợp nhiều điều biệt nhiệm hiểu nhanh. Türkçe: değiş oluştur ulaş geliş. Русский: характер даже культура. فارسی: ایران اطلاعات .:.:.:.:.:.:.:.:',
  ];
  const emoji = '👋🏽 👩🏿‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇫🇷 ❤️ 1️⃣ 🤌🏻 😀😃😄 🧑🏼‍🤝‍🧑🏾';
  const combining = 'cafe\u0301 vs café, A\u030A vs Å vs \u212B, n\u0303, e\u0301\u0301, \u212A elvin, ﬁ ligature, \u1E9B\u0323';
  const contractions = "'S 's 'Ll 'll 'LL 'VE 've 'Ve 'D 'M 'RE 'T don't DON'T I'M i'm we'D they'RE it'S ''s 'x";
  const whitespace = [
    'a  b   c\t\td\n\n\ne\r\n\r\nf \n \t \u3000 \u00a0\u00a0 x',
    `${' '.repeat(50)}x${'\t'.repeat(20)}y${'\n'.repeat(30)}z${'\r\n'.repeat(10)}w \r\n \n\n  end  `,
    '\n leading and trailing \n',
  ];
  const digits = Array.from({ length: 40 }, (_, i) => '1234567890'.repeat(4).slice(0, i + 1)).join(' ') + ' 3.14159 1,000,000 ٣٤٥ ①② ²³ x²';
  const specials = [
    '<|end_of_text|>',
    '<|eot_id|>',
    '<|im_end|>',
    '<|endoftext|>',
    'foo<|eot_id|>bar <|begin_of_text|>Hello<|end_of_text|>',
    '<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n',
    'x<|im_end|>y <|<|eot_id|>|> <|eot_id <|im_end |> <think>a</think> <tool_call>{}</tool_call>',
  ];
  const oddCharacters = 'replacement \ufffd zero\u200bwidth no\u00a0break bom\ufeffhere nel\u0085line ls\u2028ps\u2029 ctrl\u0000\u0001\u007f';
  // U+FEFF is JS \s but not White_Space, U+0085 the reverse: the pre-tokenizer must follow White_Space.
  const unicodeWhitespace = 'a  \ufeff1 . \u0085\u0085. x \ufeff\ufeff y \u0085\u0085 z\u0085\n\ufeff \u0085 ';
  const longWords = [
    'a'.repeat(3000),
    'Supercalifragilistic'.repeat(100),
    `${'x'.repeat(5000)}y`,
    '🙂'.repeat(500),
    '汉'.repeat(1000),
    '_'.repeat(2000),
    ' '.repeat(5000),
  ];
  const code = 'function f(x) {\n\treturn x * 2; // ünïcode comment\n}\n\nif (a<b && c>d) { print("<|ok|>"); }';
  const documents = [...scripts, emoji, combining, contractions, ...whitespace, digits, ...specials, oddCharacters, unicodeWhitespace, ...longWords, code];
  return [...documents, documents.join('\n')];
}

interface CountsOfDocuments {
  perDocument: number[];
  counts: Float64Array;
  route: string;
  reason?: string;
}

function countWith(tok: LoadedTokenizer, documents: string[], options: TokenCounterOptions): CountsOfDocuments {
  const { counter, reason } = createTokenCounter(tok, options);
  const perDocument = documents.map((text) => counter.add(text));
  counter.flush();
  return { perDocument, counts: counter.counts, route: counter.route, reason };
}

/** What plain encoding gives, built here independently of the counters. */
function countByEncoding(tok: LoadedTokenizer, documents: string[]): { perDocument: number[]; counts: Float64Array } {
  const counts = new Float64Array(tok.info.vocabSize);
  const perDocument = documents.map((text) => {
    const ids = tok.encode(text);
    for (const id of ids) counts[id]!++;
    return ids.length;
  });
  return { perDocument, counts };
}

function expectSameCounts(actual: { perDocument: number[]; counts: Float64Array }, expected: { perDocument: number[]; counts: Float64Array }): void {
  expect(actual.perDocument).to.deep.equal(expected.perDocument);
  expect(actual.counts.length).to.equal(expected.counts.length);
  const differing: number[] = [];
  for (let id = 0; id < expected.counts.length; id++) if (actual.counts[id] !== expected.counts[id]) differing.push(id);
  expect(differing, 'token ids whose counts differ').to.deep.equal([]);
}

async function expectLoadError(spec: string): Promise<string> {
  try {
    await loadTokenizer(spec);
  } catch (err) {
    expect(err).to.be.instanceOf(UserError);
    const message = (err as UserError).message;
    expect(message).to.not.include('\n');
    return message;
  }
  throw new Error(`loadTokenizer(${JSON.stringify(spec)}) should have failed`);
}

const temporaryFolders: string[] = [];

function writeTokenizerFolder(files: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fr-spec-tokenizer-test-'));
  temporaryFolders.push(dir);
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

after(() => {
  for (const dir of temporaryFolders) fs.rmSync(dir, { recursive: true, force: true });
});

type AddedToken = { id: number; content: string; special: boolean; normalized: boolean; lstrip?: boolean; rstrip?: boolean; single_word?: boolean };

/** A small byte-level BPE tokenizer.json (GPT-2 style ByteLevel pre-tokenizer) with a few merges. */
function tinyByteLevelTokenizer(options: {
  normalizer: unknown;
  addedTokens: (firstFreeId: number) => AddedToken[];
  preTokenizer?: unknown;
}): unknown {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((char, id) => (vocab[char] = id));
  const merges: Array<[string, string]> = [
    ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['l', 'l'], ['e', 'll'], ['h', 'ell'], ['hell', 'o'], ['Ġ', 'h'], ['Ġh', 'ello'],
    ['o', 'r'], ['Ġ', 'w'], ['Ġw', 'or'], ['l', 'd'], ['Ġwor', 'ld'], ['c', 'a'], ['ca', 'f'], ['Ã', '©'], ['caf', 'Ã©'],
    ['Ġ', 'c'], ['Ġc', 'af'], ['a', 'f'], ['Ġ', 'Ġ'], ['ĠĠ', 'ĠĠ'], ['Ċ', 'Ċ'], ['1', '2'], ['12', '3'], ['a', 'a'], ['aa', 'aa'],
  ];
  for (const [left, right] of merges) vocab[left + right] ??= Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: options.addedTokens(Object.keys(vocab).length),
    normalizer: options.normalizer,
    pre_tokenizer: options.preTokenizer ?? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

describe('tokenizer: loading', function () {
  it('lists the presets', function () {
    expect(Object.keys(PRESETS)).to.include.members(['llama3', 'qwen3']);
    for (const description of Object.values(PRESETS)) expect(description).to.be.a('string').and.not.equal('');
  });

  it('says when a folder does not exist', async function () {
    const missing = path.join(os.tmpdir(), `fr-spec-no-such-folder-${process.pid}`, 'tok');
    const message = await expectLoadError(missing);
    expect(message).to.include('not found').and.include(missing);
  });

  it('says when a name is neither a preset nor a folder', async function () {
    const message = await expectLoadError('no-such-preset-xyz');
    expect(message).to.include('no-such-preset-xyz').and.include('llama3').and.include('qwen3');
  });

  it('says what a folder without tokenizer.json should hold', async function () {
    const dir = writeTokenizerFolder({ 'tokenizer_config.json': {} });
    const message = await expectLoadError(dir);
    expect(message).to.include('no tokenizer.json').and.include(dir).and.include('llama3');
  });

  it('names the file it cannot parse', async function () {
    const dir = writeTokenizerFolder({ 'tokenizer.json': '{"model": {' });
    const message = await expectLoadError(dir);
    expect(message).to.include('cannot parse').and.include(path.join(dir, 'tokenizer.json'));
  });

  it('loads a folder without tokenizer_config.json and reads generation_config.json stop ids', async function () {
    const json = tinyByteLevelTokenizer({
      normalizer: null,
      addedTokens: (id) => [{ id, content: '<|endoftext|>', special: true, normalized: false }],
    });
    const dir = writeTokenizerFolder({ 'tokenizer.json': json, 'generation_config.json': { eos_token_id: [3, 7] } });
    const tok = await loadTokenizer(dir);
    const endOfText = (json as { added_tokens: AddedToken[] }).added_tokens[0]!.id;
    expect(tok.config).to.deep.equal({});
    expect(tok.info.name).to.equal(path.basename(dir));
    expect(tok.info.vocabSize).to.equal(endOfText + 1);
    expect(tok.info.stopIds).to.deep.equal([3, 7, endOfText]);
    expect(tok.info.bosId).to.equal(null);
    expect(tok.encode('hello world')).to.have.length.above(0);
  });
});

describe('tokenizer: llama3 preset', function () {
  let tok: LoadedTokenizer;
  before(async function () {
    tok = await loadTokenizer('llama3');
  });

  it('describes the tokenizer', function () {
    expect(tok.info.name).to.equal('llama3');
    expect(tok.info.vocabSize).to.equal(128256);
    expect(tok.info.bosId).to.equal(128000);
    expect(tok.info.stopIds).to.include.members([128001, 128009]);
    expect(tok.info.stopIds).to.deep.equal([...new Set(tok.info.stopIds)].sort((a, b) => a - b));
    expect(tok.info.sha256).to.match(/^[0-9a-f]{64}$/);
    expect(fs.existsSync(path.join(tok.info.dir, 'tokenizer.json'))).to.equal(true);
    expect(tok.idToToken(128000)).to.equal('<|begin_of_text|>');
  });

  it('encodes without adding a BOS token', function () {
    const ids = tok.encode('Hello world');
    expect(ids[0]).to.not.equal(128000);
    expect(ids.map((id) => tok.idToToken(id))).to.deep.equal(['Hello', 'Ġworld']);
  });

  describeFastEqualsReference(() => tok);
});

describe('tokenizer: qwen3 preset', function () {
  let tok: LoadedTokenizer;
  before(async function () {
    tok = await loadTokenizer('qwen3');
  });

  it('describes the tokenizer', function () {
    expect(tok.info.vocabSize).to.equal(151669);
    expect(tok.info.bosId).to.equal(null);
    expect(tok.info.stopIds).to.include.members([151643, 151645]);
    expect(tok.idToToken(151645)).to.equal('<|im_end|>');
  });

  describeFastEqualsReference(() => tok);
});

function describeFastEqualsReference(getTokenizer: () => LoadedTokenizer): void {
  describe('fast counting equals the reference', function () {
    const sample = readSampleDocuments(150);
    const stress = buildStressDocuments();

    it('takes the fast route on auto', function () {
      const { counter, reason } = createTokenCounter(getTokenizer());
      expect(counter.route).to.equal('fast');
      expect(reason).to.equal(undefined);
    });

    it('on the first 150 sample documents', function () {
      const tok = getTokenizer();
      const fast = countWith(tok, sample, { route: 'fast' });
      const reference = countWith(tok, sample, { route: 'reference' });
      expect(fast.route).to.equal('fast');
      expect(reference.route).to.equal('reference');
      expectSameCounts(fast, reference);
      expectSameCounts(reference, countByEncoding(tok, sample));
    });

    it('on the Unicode stress documents', function () {
      const tok = getTokenizer();
      expectSameCounts(countWith(tok, stress, { route: 'fast' }), countByEncoding(tok, stress));
    });

    it('when the piece cache overflows and is cleared', function () {
      const tok = getTokenizer();
      const documents = [...sample.slice(0, 30), ...stress];
      const fast = countWith(tok, documents, { route: 'fast', maxCachedPieces: 50 });
      expectSameCounts(fast, countByEncoding(tok, documents));
    });

    it('after flushes between documents', function () {
      const tok = getTokenizer();
      const documents = sample.slice(0, 20);
      const { counter } = createTokenCounter(tok, { route: 'fast' });
      const perDocument = documents.map((text) => {
        const tokens = counter.add(text);
        counter.flush();
        return tokens;
      });
      expectSameCounts({ perDocument, counts: counter.counts }, countByEncoding(tok, documents));
    });
  });
}

describe('tokenizer: small byte-level tokenizers', function () {
  const documents = [
    ...buildStressDocuments(),
    'hello <mask> world [SEP]   there',
    '   <mask>   [SEP]   ',
    'cafe\u0301 café CAFÉ <|endoftext|>cafe\u0301<|endoftext|>',
    'the hello world 123 12345 aaaaaaaa',
  ];
  const addedTokens = (id: number): AddedToken[] => [
    { id, content: '<|endoftext|>', special: true, normalized: false },
    { id: id + 1, content: '<mask>', special: true, normalized: false, lstrip: true },
    { id: id + 2, content: '[SEP]', special: true, normalized: false, rstrip: true },
    { id: id + 3, content: 'café', special: false, normalized: true },
  ];

  it('counts exactly on the fast route: ByteLevel with the GPT-2 regex, prefix space, NFC, lstrip/rstrip and normalized added tokens', async function () {
    const dir = writeTokenizerFolder({ 'tokenizer.json': tinyByteLevelTokenizer({ normalizer: { type: 'NFC' }, addedTokens }) });
    const tok = await loadTokenizer(dir);
    const auto = countWith(tok, documents, {});
    expect(auto.route).to.equal('fast');
    expectSameCounts(auto, countByEncoding(tok, documents));
  });

  it('counts exactly on the fast route: a Sequence of String and Oniguruma Splits (GPT-4o style, \\p{Han}) before ByteLevel', async function () {
    const o200kStyle =
      "\\p{Han}+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
      "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
      '|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
    const preTokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { String: '||' }, behavior: 'Isolated', invert: false },
        { type: 'Split', pattern: { Regex: o200kStyle }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    };
    const json = tinyByteLevelTokenizer({ normalizer: null, addedTokens, preTokenizer });
    const tok = await loadTokenizer(writeTokenizerFolder({ 'tokenizer.json': json }));
    const withSeparators = [...documents, 'a||b|||c ||||', 'x || y'];
    const auto = countWith(tok, withSeparators, {});
    expect(auto.route).to.equal('fast');
    expectSameCounts(auto, countByEncoding(tok, withSeparators));
  });

  const unsupported: Array<{ what: string; json: () => unknown; reason: RegExp }> = [
    {
      what: 'a Lowercase normalizer',
      json: () => tinyByteLevelTokenizer({ normalizer: { type: 'Lowercase' }, addedTokens }),
      reason: /normalizer Lowercase/,
    },
    {
      what: 'a single_word added token',
      json: () =>
        tinyByteLevelTokenizer({
          normalizer: null,
          addedTokens: (id) => [{ id, content: 'world', special: false, normalized: false, single_word: true }],
        }),
      reason: /single_word/,
    },
    {
      what: 'a Split pattern with \\w',
      json: () => ({
        ...(tinyByteLevelTokenizer({ normalizer: null, addedTokens: () => [] }) as object),
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: '\\w+|[^\\w\\s]+' }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        },
      }),
      reason: /pre-tokenizer pattern.*\\w/,
    },
    {
      what: 'a WordPiece model',
      json: () => ({
        version: '1.0',
        added_tokens: [{ id: 0, content: '[UNK]', special: true, normalized: false }],
        normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
        pre_tokenizer: { type: 'BertPreTokenizer' },
        post_processor: null,
        decoder: null,
        model: {
          type: 'WordPiece',
          unk_token: '[UNK]',
          continuing_subword_prefix: '##',
          max_input_chars_per_word: 100,
          vocab: { '[UNK]': 0, hello: 1, world: 2, '##s': 3, the: 4, ',': 5, '!': 6, h: 7, '##ello': 8 },
        },
      }),
      reason: /WordPiece/,
    },
  ];

  for (const { what, json, reason } of unsupported) {
    it(`falls back to the reference route for ${what}, with a reason, counting exactly`, async function () {
      const tok = await loadTokenizer(writeTokenizerFolder({ 'tokenizer.json': json(), 'tokenizer_config.json': {} }));
      const auto = countWith(tok, documents, { route: 'auto' });
      expect(auto.route).to.equal('reference');
      expect(auto.reason).to.match(reason);
      expect(auto.perDocument.some((tokens) => tokens > 0)).to.equal(true);
      expectSameCounts(auto, countByEncoding(tok, documents));
      expect(() => createTokenCounter(tok, { route: 'fast' })).to.throw(UserError, reason);
    });
  }
});
