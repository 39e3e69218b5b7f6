import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { exemplarAnswer, fewShotPrefix } from '../../src/bench/dataset/gsm8k.js';
import { HUMANEVAL_SYSTEM, loadDataset } from '../../src/bench/dataset/load.js';
import { DEFAULT_PROMPTS } from '../../src/bench/defaults.js';
import { UserError } from '../../src/util/errors.js';
import { makeTempDir, writeJsonl } from './helpers/model-folder.js';

const SHARED = path.resolve(import.meta.dirname, '../../../shared/bench-data');

function expectUserError(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a UserError').to.be.instanceOf(UserError);
  expect((thrown as Error).message).to.match(pattern);
}

/** GSM8K-shaped items made up for the tests. */
function gsm8kItems(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    question: `Ann has ${i + 2} apples and buys ${i + 1} more. How many apples does she have?`,
    answer: `She buys ${i + 1} apples.\nShe has ${i + 2}+${i + 1} = <<${i + 2}+${i + 1}=${2 * i + 3}>>${2 * i + 3} apples\n#### ${2 * i + 3}`,
  }));
}

describe('bench datasets', function () {
  let tmp: string;
  beforeEach(() => {
    tmp = makeTempDir();
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads Spec-Bench lines, merging the eight MT-bench categories into mt_bench', function () {
    const file = writeJsonl(path.join(tmp, 'q.jsonl'), [
      { question_id: 81, category: 'writing', turns: ['Write a poem.', 'Make it shorter.'] },
      { question_id: 161, category: 'translation', turns: ['Translate: Hallo Welt'] },
      { question_id: 321, category: 'qa', turns: ['Who wrote Faust?'], reference: ['Goethe'] },
    ]);
    const dataset = loadDataset({ dataset: 'spec-bench', data: file });
    expect(dataset.format).to.equal('spec-bench');
    expect(dataset.name).to.equal('spec-bench');
    expect(dataset.questions).to.deep.equal([
      { id: '81', category: 'mt_bench', subcategory: 'writing', turns: ['Write a poem.', 'Make it shorter.'] },
      { id: '161', category: 'translation', turns: ['Translate: Hallo Welt'] },
      { id: '321', category: 'qa', turns: ['Who wrote Faust?'] },
    ]);
    expect(dataset.style).to.deep.equal({ kind: 'chat' });
    expect(dataset.maxNewTokens).to.equal(1024);
    expect(dataset.source.sha256).to.match(/^[0-9a-f]{64}$/);
  });

  it('keeps MT-bench categories as rows of their own', function () {
    const file = writeJsonl(path.join(tmp, 'mt.jsonl'), [{ question_id: 81, category: 'writing', turns: ['a', 'b'] }]);
    expect(loadDataset({ dataset: 'mt-bench', data: file }).questions[0]).to.deep.equal({ id: '81', category: 'writing', turns: ['a', 'b'] });
  });

  it('asks HumanEval prompts as chat turns with FR-Spec\'s system instruction, 512 new tokens', function () {
    const file = writeJsonl(path.join(tmp, 'he.jsonl'), [{ task_id: 'HumanEval/0', prompt: 'def f():\n', entry_point: 'f', test: '' }]);
    const dataset = loadDataset({ dataset: 'humaneval', data: file });
    expect(dataset.questions).to.deep.equal([{ id: 'HumanEval/0', category: 'code', turns: ['def f():\n'] }]);
    expect(dataset.style).to.deep.equal({ kind: 'chat', system: HUMANEVAL_SYSTEM });
    expect(dataset.maxNewTokens).to.equal(512);
  });

  it('builds GSM8K\'s 8-shot plain prefix from the first 8 items and asks the rest', function () {
    const file = writeJsonl(path.join(tmp, 'gsm8k.jsonl'), gsm8kItems(11));
    const dataset = loadDataset({ dataset: 'gsm8k', data: file });
    expect(dataset.questions.map((q) => q.turns[0])).to.deep.equal(gsm8kItems(11).slice(8).map((item) => `Q: ${item.question}\nA:`));
    expect(dataset.fewshot).to.include({ file, shots: 8 });
    if (dataset.style.kind !== 'plain') throw new Error('GSM8K is plain text');
    const first = 'Q: Ann has 2 apples and buys 1 more. How many apples does she have?\nA: She buys 1 apples. She has 2+1 = 3 apples. The answer is 3.\n\n';
    expect(dataset.style.prefix.startsWith(first)).to.equal(true);
    expect(dataset.style.prefix.split('Q: ').length - 1).to.equal(8);
    expect(dataset.style.prefix).not.to.include('<<');
    expect(dataset.style.prefix).not.to.include('####');
  });

  it('formats an exemplar answer and a prefix exactly', function () {
    expect(exemplarAnswer('Half of 10 is <<10/2=5>>5\nSo 5 remain.\n#### 1,000')).to.equal('Half of 10 is 5. So 5 remain. The answer is 1000.');
    expect(fewShotPrefix([{ question: ' What is 1+1? ', solution: '1+1=2\n#### 2' }])).to.equal('Q: What is 1+1?\nA: 1+1=2. The answer is 2.\n\n');
  });

  it('reads EAGLE\'s GSM8K copy (turns + reference) and takes exemplars from --fewshot when given', function () {
    const eagleStyle = gsm8kItems(3).map((item, i) => ({ question_id: i, category: 'math', turns: [item.question], reference: [item.answer] }));
    const file = writeJsonl(path.join(tmp, 'eagle-gsm8k.jsonl'), eagleStyle);
    const shots = writeJsonl(path.join(tmp, 'shots.jsonl'), gsm8kItems(2));
    const dataset = loadDataset({ dataset: 'gsm8k', data: file, fewshot: shots, shots: 2 });
    expect(dataset.questions).to.have.length(3);
    expect(dataset.questions[0]).to.deep.equal({ id: '0', category: 'math', turns: [`Q: ${gsm8kItems(1)[0].question}\nA:`] });
    expect(dataset.fewshot).to.include({ file: shots, shots: 2 });
  });

  it('refuses GSM8K files too short for their exemplars, and exemplars without "####"', function () {
    const short = writeJsonl(path.join(tmp, 'short.jsonl'), gsm8kItems(8));
    expectUserError(() => loadDataset({ dataset: 'gsm8k', data: short }), /no questions left after the 8 few-shot exemplars/);
    const tiny = writeJsonl(path.join(tmp, 'tiny.jsonl'), gsm8kItems(3));
    expectUserError(() => loadDataset({ dataset: 'gsm8k', data: tiny }), /8 few-shot exemplars wanted but the file has 3/);
    const noAnswer = writeJsonl(path.join(tmp, 'noanswer.jsonl'), [{ question_id: 1, turns: ['q'], reference: ['no marker'] }, ...gsm8kItems(9)]);
    expectUserError(() => loadDataset({ dataset: 'gsm8k', data: noAnswer }), /noanswer\.jsonl:1: a few-shot exemplar needs a reference solution/);
  });

  it('detects the format of a file given by path', function () {
    const prompts = writeJsonl(path.join(tmp, 'mine.jsonl'), [{ prompt: 'Hello?' }, { id: 'x', category: 'chat', turns: ['Hi', 'Again'] }]);
    const dataset = loadDataset({ dataset: prompts });
    expect(dataset.name).to.equal('mine');
    expect(dataset.format).to.equal('prompts');
    expect(dataset.questions).to.deep.equal([
      { id: 'line-1', category: 'default', turns: ['Hello?'] },
      { id: 'x', category: 'chat', turns: ['Hi', 'Again'] },
    ]);
    const humaneval = writeJsonl(path.join(tmp, 'he.jsonl'), [{ task_id: 'T/1', prompt: 'def g():' }]);
    expect(loadDataset({ dataset: humaneval }).format).to.equal('humaneval');
    const gsm = writeJsonl(path.join(tmp, 'g.jsonl'), gsm8kItems(9));
    expect(loadDataset({ dataset: gsm }).format).to.equal('gsm8k');
  });

  it('applies --limit after the exemplars', function () {
    const file = writeJsonl(path.join(tmp, 'gsm8k.jsonl'), gsm8kItems(12));
    expect(loadDataset({ dataset: 'gsm8k', data: file, limit: 2 }).questions.map((q) => q.id)).to.deep.equal(['line-9', 'line-10']);
  });

  it('keeps the first n questions of each category with --per-category, interleaved, then applies --limit', function () {
    const items = ['a', 'a', 'a', 'b', 'c', 'c', 'a', 'b', 'b'].map((category, i) => ({ id: `q${i}`, category, turns: ['x'] }));
    const file = writeJsonl(path.join(tmp, 'cats.jsonl'), items);
    expect(loadDataset({ dataset: file, perCategory: 2 }).questions.map((q) => q.id)).to.deep.equal(['q0', 'q3', 'q4', 'q1', 'q7', 'q5']);
    expect(loadDataset({ dataset: file, perCategory: 1, limit: 2 }).questions.map((q) => q.id)).to.deep.equal(['q0', 'q3']);
  });

  it('says clearly what is wrong with bad input', function () {
    const unknown = writeJsonl(path.join(tmp, 'odd.jsonl'), [{ text: 'x', meta: {} }]);
    expectUserError(() => loadDataset({ dataset: unknown }), /odd\.jsonl: unknown dataset format \(line 1 has the fields text, meta\)/);
    expectUserError(() => loadDataset({ dataset: 'spec-bench' }), /--dataset spec-bench needs --data <path>: fr-spec does not ship third-party benchmark data/);
    expectUserError(() => loadDataset({ dataset: 'specbench' }), /unknown dataset "specbench": expected spec-bench, humaneval, gsm8k, mt-bench/);
    expectUserError(() => loadDataset({ dataset: path.join(tmp, 'missing.jsonl') }), /missing\.jsonl: no such file/);
    const he = writeJsonl(path.join(tmp, 'he.jsonl'), [{ task_id: 'T/1', prompt: 'def g():' }]);
    expectUserError(() => loadDataset({ dataset: 'spec-bench', data: he }), /he\.jsonl:1: not a spec-bench line: expected "question_id", "category" and "turns"/);
    const broken = path.join(tmp, 'broken.jsonl');
    fs.writeFileSync(broken, '{"prompt": "a"}\n{"prompt": \n');
    expectUserError(() => loadDataset({ dataset: broken }), /broken\.jsonl:2: not valid JSON/);
    const dup = writeJsonl(path.join(tmp, 'dup.jsonl'), [{ id: 1, prompt: 'a' }, { id: 1, prompt: 'b' }]);
    expectUserError(() => loadDataset({ dataset: dup }), /question id 1 appears twice/);
    const all = writeJsonl(path.join(tmp, 'all.jsonl'), [{ category: 'all', prompt: 'a' }]);
    expectUserError(() => loadDataset({ dataset: all }), /category "all" is reserved/);
    const emptyTurns = writeJsonl(path.join(tmp, 'empty.jsonl'), [{ turns: [] }]);
    expectUserError(() => loadDataset({ dataset: emptyTurns }), /"turns" must be a non-empty array/);
    expectUserError(() => loadDataset({ dataset: he, fewshot: he }), /--fewshot is for GSM8K only/);
  });

  it('ships its own small prompt set: 16 prompts in 4 categories', function () {
    const dataset = loadDataset({ dataset: DEFAULT_PROMPTS });
    expect(dataset.questions).to.have.length(16);
    expect([...new Set(dataset.questions.map((q) => q.category))]).to.deep.equal(['writing', 'qa', 'code', 'math']);
    expect(dataset.questions.filter((q) => q.turns.length === 2)).to.have.length(3);
  });

  describe('the real benchmark files (shared/bench-data, when present)', function () {
    before(function () {
      if (!fs.existsSync(SHARED)) this.skip();
    });

    it('Spec-Bench: 480 questions in 6 reporting groups, mt_bench two-turn', function () {
      const dataset = loadDataset({ dataset: 'spec-bench', data: path.join(SHARED, 'spec_bench.jsonl') });
      expect(dataset.questions).to.have.length(480);
      const groups = new Map<string, number>();
      for (const q of dataset.questions) groups.set(q.category, (groups.get(q.category) ?? 0) + 1);
      expect(Object.fromEntries(groups)).to.deep.equal({ mt_bench: 80, translation: 80, summarization: 80, qa: 80, math_reasoning: 80, rag: 80 });
      expect(dataset.questions.filter((q) => q.category === 'mt_bench').every((q) => q.turns.length === 2)).to.equal(true);
    });

    it('HumanEval 164, MT-bench 80 in 8 categories, GSM8K 72 after 8 exemplars', function () {
      expect(loadDataset({ dataset: 'humaneval', data: path.join(SHARED, 'human_eval.jsonl') }).questions).to.have.length(164);
      const mt = loadDataset({ dataset: 'mt-bench', data: path.join(SHARED, 'mt_bench.jsonl') });
      expect(new Set(mt.questions.map((q) => q.category)).size).to.equal(8);
      const gsm = loadDataset({ dataset: 'gsm8k', data: path.join(SHARED, 'gsm8k.jsonl') });
      expect(gsm.questions).to.have.length(72);
      if (gsm.style.kind !== 'plain') throw new Error('plain expected');
      expect(gsm.style.prefix.match(/The answer is [\d.-]+\.\n\n/g)).to.have.length(8);
    });
  });
});
