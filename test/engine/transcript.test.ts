import { expect } from 'chai';
import { Transcript } from '../../src/engine/transcript.js';
import { UserError } from '../../src/util/errors.js';

describe('engine/transcript', () => {
  it('keeps a stop id as the last token and drops what a step drafted after it', () => {
    const seen: number[][] = [];
    const t = new Transcript([1, 2], { maxNewTokens: 10, stopIds: [9], contextLength: 100 }, (ids) => seen.push([...ids]));
    expect(t.commit([5], false)).to.equal(1);
    expect(t.commit([6, 9, 7, 8])).to.equal(2);
    expect(t.generated).to.deep.equal([5, 6, 9]);
    expect(t.stopReason).to.equal('stop-token');
    expect(t.commit([4])).to.equal(0);
    expect(seen).to.deep.equal([[5], [6, 9]]);
    expect(t.cycleLengths).to.deep.equal([2]);
  });

  it('stops at the new-token budget and at the context length', () => {
    const budget = new Transcript([1], { maxNewTokens: 3, stopIds: [], contextLength: 100 });
    budget.commit([2, 3, 4, 5]);
    expect([budget.generated, budget.stopReason]).to.deep.equal([[2, 3, 4], 'max-new-tokens']);
    const context = new Transcript([1, 1], { maxNewTokens: 30, stopIds: [], contextLength: 4 });
    context.commit([2, 3, 4]);
    expect([context.generated, context.stopReason]).to.deep.equal([[2, 3], 'context-length']);
  });

  it('refuses a prompt that fills the context', () => {
    expect(() => new Transcript([1, 2, 3], { maxNewTokens: 3, stopIds: [], contextLength: 3 })).to.throw(UserError, /the prompt has 3 tokens but the model's context holds 3/);
    expect(() => new Transcript([], { maxNewTokens: 3, stopIds: [], contextLength: 3 })).to.throw(UserError, /empty/);
  });
});
