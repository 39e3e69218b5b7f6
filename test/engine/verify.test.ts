/**
 * Verification walks on made-up trees, and a simulation of whole speculative generations against a
 * made-up target (distributions that depend on the context): the committed tokens must follow the
 * target's distribution exactly (chi-square over many seeds), while a subtly wrong variant must fail.
 */
import { expect } from 'chai';
import { speculativeSamplingChain } from '../../src/engine/chain-verify.js';
import { CandidatePool } from '../../src/engine/draft-tree.js';
import { SeededRandom } from '../../src/engine/random.js';
import { distributionFromLogits, probabilityOf, sampleFrom, type Distribution } from '../../src/engine/sampling.js';
import { chainTree, childrenOf, pathTo, type TokenTree } from '../../src/engine/token-tree.js';
import { greedyWalk, matchSamplingWalk, sequentialSamplingWalk, type DistributionAt, type WalkResult } from '../../src/engine/tree-verify.js';
import { chiSquare, countOutcomes } from './helpers/statistics.js';

const VOCAB = 5;

/** A fixed pseudo-random distribution per context (salted, so target and draft differ). */
function contextDistribution(salt: number, sharpness: number): (context: readonly number[]) => Distribution {
  const cache = new Map<string, Distribution>();
  return (context) => {
    const key = context.join(',');
    let p = cache.get(key);
    if (!p) {
      let seed = salt;
      for (const t of context) seed = (Math.imul(seed, 31) + t + 7) | 0;
      const random = new SeededRandom(seed);
      p = distributionFromLogits(Array.from({ length: VOCAB }, () => sharpness * (random.uniform() * 2 - 1)), { temperature: 1, topP: 1 });
      cache.set(key, p);
    }
    return p;
  };
}

const target = contextDistribution(1, 2.5);
const draft = contextDistribution(2, 2.5);

/** An EAGLE-style tree from the draft: top-2 children per node, 2 levels, 5 nodes. */
function draftTree(context: readonly number[], root: number): TokenTree {
  const pool = new CandidatePool();
  const topK = (p: Distribution) => {
    const ids = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b).slice(0, 2);
    return { ids, logprobs: ids.map((id) => Math.log(p[id])) };
  };
  const first = pool.addLevel([{ parent: -1, ...topK(draft([...context, root])) }]);
  pool.addLevel(first.map((c) => ({ parent: c, ...topK(draft([...context, root, pool.candidates[c].token])) })));
  return pool.toTree(root, 5).tree;
}

type Walk = (tree: TokenTree, start: number, at: DistributionAt, random: SeededRandom) => Promise<WalkResult>;

/** The first `count` tokens of a speculative generation from an empty prompt. */
async function generateWith(walk: Walk, seed: number, count: number): Promise<number[]> {
  const random = new SeededRandom(seed);
  const out = [sampleFrom(target([]), random.uniform())];
  while (out.length < count) {
    const context = out.slice(0, -1);
    const tree = draftTree(context, out[out.length - 1]);
    const at = (node: number) => target([...context, ...pathTo(tree, node).map((n) => tree.tokens[n])]);
    const { path, next } = await walk(tree, 0, at, random);
    out.push(...path.slice(1).map((n) => tree.tokens[n]), next);
  }
  return out.slice(0, count);
}

/** Exact probabilities of every sequence of `count` tokens under the target. */
function exactJoint(count: number): Map<string, number> {
  let joint = new Map<string, number>([['', 1]]);
  for (let step = 0; step < count; step++) {
    const next = new Map<string, number>();
    for (const [key, p] of joint) {
      const context = key === '' ? [] : key.split(',').map(Number);
      target(context).forEach((q, token) => {
        if (q > 0) next.set([...context, token].join(','), p * q);
      });
    }
    joint = next;
  }
  return joint;
}

async function fit(walk: Walk, samples: number) {
  const outcomes: number[][] = [];
  for (let seed = 0; seed < samples; seed++) outcomes.push(await generateWith(walk, seed, 3));
  return chiSquare(countOutcomes(outcomes), exactJoint(3), samples);
}

/** A plausible bug: accept siblings with their raw p and sample the residual from the untouched p. */
const withoutRenormalizing: Walk = async (tree, start, at, random) => {
  const children = childrenOf(tree);
  const path = [start];
  for (let node = start; ; ) {
    const p = await at(node);
    const next = children[node].find((c) => random.uniform() < probabilityOf(p, tree.tokens[c]));
    if (next === undefined) return { path, next: sampleFrom(p, random.uniform()) };
    path.push(next);
    node = next;
  }
};

describe('engine/tree-verify and chain-verify', () => {
  const tree: TokenTree = { tokens: [0, 4, 6, 7, 8, 9], parents: [-1, 0, 0, 1, 1, 3] };

  it('greedy: follows the sibling equal to the argmax, bonus from the last accepted node', () => {
    expect(greedyWalk(tree, 0, (n) => [6, 1, 1, 1, 1, 1][n])).to.deep.equal({ path: [0, 2], next: 1 });
    expect(greedyWalk(tree, 0, (n) => [4, 7, 1, 9, 1, 3][n])).to.deep.equal({ path: [0, 1, 3, 5], next: 3 });
    expect(greedyWalk(tree, 0, () => 5)).to.deep.equal({ path: [0], next: 5 });
    // Walks may start inside a chain (Ouroboros' draft forward starts at the last uncached token).
    expect(greedyWalk(chainTree([1, 2, 3]), 1, () => 3)).to.deep.equal({ path: [1, 2], next: 3 });
  });

  it('sampling walks with a one-hot target reduce to greedy', async () => {
    const oneHot = (token: number) => Float64Array.from({ length: 10 }, (_, i) => (i === token ? 1 : 0));
    const argmax = [4, 7, 1, 9, 1, 3];
    for (const walk of [sequentialSamplingWalk, matchSamplingWalk]) {
      expect(await walk(tree, 0, (n) => oneHot(argmax[n]), new SeededRandom(1))).to.deep.equal({ path: [0, 1, 3, 5], next: 3 });
    }
  });

  it('the sequential walk never mutates the distributions it is given', async () => {
    const p = Float64Array.of(0, 0, 0, 0, 0.5, 0, 0.5, 0, 0, 0);
    const copy = Float64Array.from(p);
    await sequentialSamplingWalk(tree, 0, () => p, new SeededRandom(5));
    expect(Array.from(p)).to.deep.equal(Array.from(copy));
  });

  it('EAGLE-2 sequential tree sampling commits tokens distributed as the target\'s', async () => {
    const result = await fit(sequentialSamplingWalk, 20000);
    expect(result.statistic, JSON.stringify(result)).to.be.below(result.critical);
  });

  it('Ouroboros\' sample-and-match walk commits tokens distributed as the target\'s', async () => {
    const result = await fit(matchSamplingWalk, 20000);
    expect(result.statistic, JSON.stringify(result)).to.be.below(result.critical);
  });

  it('the test has power: skipping the renormalization after a rejected sibling is caught', async () => {
    const result = await fit(withoutRenormalizing, 20000);
    expect(result.statistic, JSON.stringify(result)).to.be.above(result.critical);
  });

  it('Leviathan/Chen chain sampling with the draft\'s q commits tokens distributed as the target\'s', async () => {
    const gamma = 2;
    const outcomes: number[][] = [];
    for (let seed = 0; seed < 20000; seed++) {
      const random = new SeededRandom(seed);
      const out = [sampleFrom(target([]), random.uniform())];
      while (out.length < 3) {
        const drafts: number[] = [];
        const qs: Distribution[] = [];
        for (let i = 0; i < gamma; i++) {
          const q = draft([...out, ...drafts]);
          qs.push(q);
          drafts.push(sampleFrom(q, random.uniform()));
        }
        const { accepted, next } = await speculativeSamplingChain(drafts, qs, (i) => target([...out, ...drafts.slice(0, i)]), random);
        out.push(...drafts.slice(0, accepted), next);
      }
      outcomes.push(out.slice(0, 3));
    }
    const result = chiSquare(countOutcomes(outcomes), exactJoint(3), outcomes.length);
    expect(result.statistic, JSON.stringify(result)).to.be.below(result.critical);
  });
});
