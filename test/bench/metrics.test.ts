import { expect } from 'chai';
import { summarize, type SummaryRow } from '../../src/bench/metrics.js';
import type { PairRecord } from '../../src/bench/store/records.js';
import type { TurnRecord } from '../../src/bench/conversation.js';

const turn = (newTokens: number, wallSeconds: number, acceptLengths: number[], tokenIds: number[] = Array.from({ length: newTokens }, (_, i) => i)): TurnRecord => ({
  promptTokens: 10,
  newTokens,
  wallSeconds,
  acceptLengths,
  targetForwards: acceptLengths.length + 1,
  tokenIds,
  text: '',
});

const record = (method: string, question: string, category: string, turns: TurnRecord[], run = 1): PairRecord => ({ method, question, category, run, seed: 0, turns });

/**
 * The hand-computed example of docs/bench.md:
 *   vanilla  q1 (A) 10 tok / 2 s = 5;  q2 (A, two turns) (6+4) / (1+1) = 5;  q3 (B) 20 / 2 = 10
 *   eagle2   q1 10 / 0.5 = 20;         q2 (6+4) / (0.25+0.25) = 20;          q3 20 / 0.4 = 50
 */
function example(): PairRecord[] {
  const differentTurn2 = [9, 9, 9, 9];
  return [
    record('vanilla', 'q1', 'A', [turn(10, 2, Array(9).fill(1))]),
    record('vanilla', 'q2', 'A', [turn(6, 1, Array(5).fill(1)), turn(4, 1, Array(3).fill(1))]),
    record('vanilla', 'q3', 'B', [turn(20, 2, Array(19).fill(1))]),
    record('eagle2', 'q1', 'A', [turn(10, 0.5, [4, 3, 2])]),
    record('eagle2', 'q2', 'A', [turn(6, 0.25, [3, 2]), turn(4, 0.25, [3, 1], differentTurn2)]),
    record('eagle2', 'q3', 'B', [turn(20, 0.4, [4, 4, 4, 4, 3])]),
  ];
}

const rowOf = (rows: SummaryRow[], method: string, category: string) => {
  const row = rows.find((r) => r.method === method && r.category === category);
  if (!row) throw new Error(`no row ${method}/${category}`);
  return row;
};

describe('bench metrics (Spec-Bench speed.py formulas)', function () {
  it('computes tokens/s, pooled τ, speedups and output equality on a hand-computed example', function () {
    const summary = summarize(example(), { methods: ['vanilla', 'eagle2'], categories: ['A', 'B'], greedy: true });
    expect(summary.categories).to.deep.equal(['A', 'B', 'all']);
    expect(summary.rows.map((r) => `${r.method}/${r.category}`)).to.deep.equal(['vanilla/A', 'vanilla/B', 'vanilla/all', 'eagle2/A', 'eagle2/B', 'eagle2/all']);

    const vA = rowOf(summary.rows, 'vanilla', 'A');
    expect(vA).to.deep.include({ questions: 2, newTokens: 20, tokensPerSecond: 5, tau: 1, speedupVsVanilla: 1, outputsEqual: true });
    expect(rowOf(summary.rows, 'vanilla', 'all').tokensPerSecond).to.be.closeTo(20 / 3, 1e-12);

    const eA = rowOf(summary.rows, 'eagle2', 'A');
    expect(eA.tokensPerSecond).to.equal(20);
    expect(eA.speedupVsVanilla).to.equal(4);
    expect(eA.speedupVsEagle2).to.equal(1);
    // Pooled over every step of the category: [4,3,2] + [3,2] + [3,1] → 18 / 7 (not the mean of per-question τ, 2.625).
    expect(eA.tau).to.be.closeTo(18 / 7, 1e-12);
    expect(eA.outputsEqual).to.equal(false);

    const eB = rowOf(summary.rows, 'eagle2', 'B');
    expect(eB).to.deep.include({ questions: 1, newTokens: 20, tokensPerSecond: 50, speedupVsVanilla: 5, outputsEqual: true });
    expect(eB.tau).to.be.closeTo(19 / 5, 1e-12);

    const eAll = rowOf(summary.rows, 'eagle2', 'all');
    expect(eAll.tokensPerSecond).to.equal(30);
    // A ratio of means: 30 / (20/3) = 4.5, not the mean of per-question ratios (4 + 4 + 5) / 3.
    expect(eAll.speedupVsVanilla).to.be.closeTo(4.5, 1e-12);
    expect(eAll.tau).to.be.closeTo(37 / 12, 1e-12);
    expect(eAll.newTokens).to.equal(40);
    expect(eAll.outputsEqual).to.equal(false);
    expect(rowOf(summary.rows, 'vanilla', 'all').speedupVsEagle2).to.be.closeTo(1 / 4.5, 1e-12);

    const q2 = summary.questions.find((q) => q.method === 'eagle2' && q.question === 'q2')!;
    expect(q2).to.deep.include({ tokensPerSecond: 20, newTokens: 10, tau: 9 / 4, equalsVanilla: false, runs: 1 });
  });

  it('takes the median over runs per question', function () {
    const records = [1, 2, 10].map((seconds, i) => record('vanilla', 'q1', 'A', [turn(10, seconds, [1])], i + 1));
    const summary = summarize(records, { methods: ['vanilla'], categories: ['A'], greedy: true });
    // Speeds 10, 5 and 1 token/s: the median is 5 (the mean would be 5.33).
    expect(rowOf(summary.rows, 'vanilla', 'A').tokensPerSecond).to.equal(5);
    expect(summary.questions[0].runs).to.equal(3);
  });

  it('leaves speedups empty without their reference method, and equality unjudged when sampling', function () {
    const records = example().filter((r) => r.method === 'eagle2');
    const withoutVanilla = summarize(records, { methods: ['eagle2'], categories: ['A', 'B'], greedy: true });
    expect(rowOf(withoutVanilla.rows, 'eagle2', 'A')).to.deep.include({ speedupVsVanilla: null, outputsEqual: null, speedupVsEagle2: 1 });
    const sampled = summarize(example(), { methods: ['vanilla', 'eagle2'], categories: ['A', 'B'], greedy: false });
    expect(sampled.rows.every((r) => r.outputsEqual === null)).to.equal(true);
    const noSteps = summarize([record('vanilla', 'q', 'A', [turn(1, 1, [])])], { methods: [], categories: [], greedy: true });
    expect(rowOf(noSteps.rows, 'vanilla', 'A').tau).to.equal(null);
  });

  it('orders methods and categories as asked, with unknown ones after', function () {
    const summary = summarize(example(), { methods: ['eagle2'], categories: ['B'], greedy: true });
    expect(summary.methods).to.deep.equal(['eagle2', 'vanilla']);
    expect(summary.categories).to.deep.equal(['B', 'A', 'all']);
  });
});
