import { expect } from 'chai';
import { createBenchProgress } from '../../src/bench/progress-bar.js';
import type { PairRecord } from '../../src/bench/store/records.js';

/** Enough of a terminal for cli-progress, keeping what is written. */
function fakeTerminal() {
  let text = '';
  const stream = {
    isTTY: true,
    columns: 200,
    write: (chunk: string) => {
      text += chunk;
      return true;
    },
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    on: () => stream,
    removeListener: () => stream,
  };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

describe('bench progress', function () {
  it('shows loading and warm-up lines, then the current method, question and running tokens/s', function () {
    const terminal = fakeTerminal();
    const progress = createBenchProgress(terminal.stream);
    progress.onLoad!('eagle2');
    progress.onWarmup!('eagle2', 1, 3);
    const method = { label: 'eagle2', method: 'eagle2' as const };
    const question = { id: '81', category: 'mt_bench', turns: ['x'] };
    progress.onPairStart!({ run: 1, questionIndex: 0, method, question, done: 0, total: 4 });
    const record: PairRecord = { method: 'eagle2', question: '81', category: 'mt_bench', run: 1, seed: 0, turns: [{ promptTokens: 3, newTokens: 30, wallSeconds: 2, acceptLengths: [], targetForwards: 1, tokenIds: [], text: '' }] };
    progress.onPairDone!({ run: 1, questionIndex: 0, method, question, done: 1, total: 4 }, record);
    progress.onPairStart!({ run: 1, questionIndex: 1, method, question: { ...question, id: '82' }, done: 1, total: 4 });
    progress.stop();
    const text = terminal.text();
    expect(text).to.include('loading eagle2…\n');
    expect(text).to.include('warm-up eagle2 1/3\n');
    expect(text).to.match(/eagle2 \| question 2 \(82\) run 1 \[.*\] 1\/4 \| 15\.0 tok\/s/);
  });
});
