import { expect } from 'chai';
import { SeededRandom } from '../../src/engine/random.js';
import { distributionFromLogits, removeAndRenormalize, residual, sampleFrom } from '../../src/engine/sampling.js';

const sum = (p: ArrayLike<number>) => Array.from(p).reduce((a, b) => a + b, 0);

describe('engine/sampling', () => {
  it('softmax with temperature', () => {
    const p = distributionFromLogits([0, Math.log(2), Math.log(4)], { temperature: 1, topP: 1 });
    [1 / 7, 2 / 7, 4 / 7].forEach((v, i) => expect(p[i]).to.be.closeTo(v, 1e-12));
    const hot = distributionFromLogits([0, Math.log(2), Math.log(4)], { temperature: 2, topP: 1 });
    expect(hot[2] / hot[0]).to.be.closeTo(2, 1e-12);
  });

  it('top-p keeps the smallest most likely set reaching the mass, ties toward the lower id', () => {
    const p = distributionFromLogits([Math.log(0.5), Math.log(0.2), Math.log(0.2), Math.log(0.1)], { temperature: 1, topP: 0.7 });
    expect(Array.from(p).map((v) => +v.toFixed(6))).to.deep.equal([0.714286, 0.285714, 0, 0]);
    expect(sum(p)).to.be.closeTo(1, 1e-12);
  });

  it('refuses a greedy distribution', () => {
    expect(() => distributionFromLogits([1, 2], { temperature: 0, topP: 1 })).to.throw(/greedy/);
  });

  it('inverse-CDF sampling over ascending ids, skipping zeros', () => {
    const p = Float64Array.of(0.25, 0, 0.5, 0.25);
    expect([0, 0.24, 0.25, 0.74, 0.75, 0.999999].map((u) => sampleFrom(p, u))).to.deep.equal([0, 0, 2, 2, 3, 3]);
    expect(() => sampleFrom(new Float64Array(3), 0.5)).to.throw(/all-zero/);
  });

  it('residuals: a rejected sibling removed; Leviathan max(0, p − q)', () => {
    const p = Float64Array.of(0.5, 0.3, 0.2);
    removeAndRenormalize(p, 0);
    expect(Array.from(p).map((v) => +v.toFixed(6))).to.deep.equal([0, 0.6, 0.4]);
    const r = residual(Float64Array.of(0.5, 0.3, 0.2), Float64Array.of(0.2, 0.6, 0.2));
    expect(Array.from(r)).to.deep.equal([1, 0, 0]);
  });

  it('the seeded generator is reproducible and roughly uniform', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const draws = Array.from({ length: 20000 }, () => a.uniform());
    expect(draws.slice(0, 5)).to.deep.equal(Array.from({ length: 5 }, () => b.uniform()));
    expect(new SeededRandom(8).uniform()).not.to.equal(draws[0]);
    const mean = sum(draws) / draws.length;
    expect(mean).to.be.closeTo(0.5, 0.01);
    expect(Math.min(...draws)).to.be.at.least(0);
    expect(Math.max(...draws)).to.be.below(1);
  });
});
