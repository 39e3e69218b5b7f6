/**
 * The fused loops' sampling arithmetic (src/model/fused/sampling-ops.ts) against the host's
 * (src/engine/sampling.ts), op by op on the CPU: the distribution from logits (temperature, nucleus
 * with ties) and the inverse-CDF draw at its edges.
 */
import { expect } from 'chai';
import { distributionFromLogits, sampleFrom } from '../../src/engine/sampling.js';
import { SeededRandom } from '../../src/engine/random.js';
import { blockedCumSum, CUMSUM_BLOCK, drawFrom, samplingProbabilities } from '../../src/model/fused/sampling-ops.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import { loadOrt } from '../../src/model/ort-runtime.js';

const ort = loadOrt();

async function probabilities(logits: number[][], temperature: number, topP?: number, vocab?: number): Promise<Float32Array> {
  const b = new GraphBuilder('probabilities');
  const input = b.input('logits', 'float32', [logits.length, logits[0].length]);
  const t = b.input('temperature', 'float32', []);
  const p = topP === undefined ? undefined : b.input('top_p', 'float32', []);
  b.output(samplingProbabilities(b, input, t, p, vocab), 'float32', [logits.length, logits[0].length], 'p');
  const session = await ort.InferenceSession.create(b.toBytes());
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
    logits: new ort.Tensor('float32', Float32Array.from(logits.flat()), [logits.length, logits[0].length]),
    temperature: new ort.Tensor('float32', Float32Array.of(temperature), []),
  };
  if (topP !== undefined) feeds.top_p = new ort.Tensor('float32', Float32Array.of(topP), []);
  const out = await session.run(feeds);
  await session.release();
  return out.p.data as Float32Array;
}

async function draws(p: number[], uniforms: number[], vocab?: number): Promise<number[]> {
  const b = new GraphBuilder('draw');
  const input = b.input('p', 'float32', [p.length]);
  const u = b.input('u', 'float32', []);
  b.output(drawFrom(b, input, u, vocab), 'int64', [], 'id');
  const session = await ort.InferenceSession.create(b.toBytes());
  const ids: number[] = [];
  for (const value of uniforms) {
    const out = await session.run({ p: new ort.Tensor('float32', Float32Array.from(p), [p.length]), u: new ort.Tensor('float32', Float32Array.of(value), []) });
    ids.push(Number((out.id.data as BigInt64Array)[0]));
  }
  await session.release();
  return ids;
}

describe('fused sampling ops equal the host\'s sampling arithmetic (CPU)', () => {
  it('softmax and the draw\'s last id with mass in two levels (blocks of the vocabulary) equal the one-level ops', async () => {
    const random = new SeededRandom(11);
    const vocab = 40; // blocks of 5 (vocabBlockWidth)
    const rows = Array.from({ length: 3 }, () => Array.from({ length: vocab }, () => 8 * random.uniform() - 4));
    rows[2] = rows[2].map((x, i) => (i % 5 === 0 ? -Infinity : x)); // a masked id in every block
    rows[1] = rows[1].map((x, i) => (i >= 10 && i < 20 ? -Infinity : x)); // two whole blocks masked
    for (const [temperature, topP] of [[1, undefined], [0.6, 0.8]] as const) {
      const [one, two] = await Promise.all([probabilities(rows, temperature, topP), probabilities(rows, temperature, topP, vocab)]);
      two.forEach((x, i) => expect(x, `T ${temperature}, top-p ${topP}, value ${i}`).to.be.closeTo(one[i], 1e-6));
    }
    // The last id with mass decides a draw whose threshold rounds past the end: mass ending mid-block and at a block's end.
    for (const lastWithMass of [23, 29, 39]) {
      const p = Array.from({ length: vocab }, (_, i) => (i <= lastWithMass && i % 3 !== 1 ? 1 : 0));
      const uniforms = [0, 0.5, 0.999999, 1];
      expect(await draws(p, uniforms, vocab), `mass up to ${lastWithMass}`).to.deep.equal(await draws(p, uniforms));
      expect((await draws(p, [1], vocab))[0], `mass up to ${lastWithMass}`).to.equal(lastWithMass - (lastWithMass % 3 === 1 ? 1 : 0));
    }
  });

  it('softmax(logits / T) and nucleus truncation, ties toward the lower id', async () => {
    const random = new SeededRandom(3);
    const rows = [
      Array.from({ length: 40 }, () => 4 * random.uniform() - 2),
      [1, 3, 3, 0, 3, -1, 2, 2], // ties at the nucleus boundary
    ];
    for (const [temperature, topP] of [[1, undefined], [0.7, 0.9], [1.3, 0.5], [1, 0.35]] as const) {
      const got = await probabilities(rows.map((r) => [...r, ...Array(40 - r.length).fill(-30)]), temperature, topP);
      rows.forEach((row, i) => {
        const padded = [...row, ...Array(40 - row.length).fill(-30)];
        const want = distributionFromLogits(padded, { temperature, topP: topP ?? 1 });
        const label = `row ${i}, T ${temperature}, top-p ${topP}`;
        want.forEach((value, id) => expect(got[i * 40 + id], `${label}, id ${id}`).to.be.closeTo(value, 1e-5));
      });
    }
  });

  it('draws the first id whose cumulative mass exceeds u × total, skipping empty ids, never past the last id with mass', async () => {
    const p = [0, 0.2, 0, 0.3, 0.5, 0];
    const uniforms = [0, 0.1999, 0.2001, 0.4999, 0.5001, 0.99999, 1];
    const expected = uniforms.map((u) => sampleFrom(Float64Array.from(p), u));
    expect(await draws(p, uniforms)).to.deep.equal(expected);
    expect(expected).to.deep.equal([1, 1, 3, 3, 4, 4, 4]);
    // Unnormalized mass (a residual after rejected drafts) scales the threshold, as sampleFrom does.
    const residual = [0, 0.2, 0, 0, 0.2, 0];
    expect(await draws(residual, [0.25, 0.75])).to.deep.equal([1, 4]);
  });

  it('blocked prefix sums equal a running sum over any length, rows independent, never decreasing on non-negative input', async () => {
    const random = new SeededRandom(11);
    for (const length of [1, CUMSUM_BLOCK - 1, CUMSUM_BLOCK, CUMSUM_BLOCK + 1, 5 * CUMSUM_BLOCK + 7, 4000]) {
      const rows = 3;
      const x = Float32Array.from({ length: rows * length }, () => (random.uniform() < 0.3 ? 0 : random.uniform()));
      const b = new GraphBuilder('cumsum');
      b.output(blockedCumSum(b, b.input('x', 'float32', [rows, length]), 2), 'float32', [rows, length], 'y');
      const session = await ort.InferenceSession.create(b.toBytes());
      const y = (await session.run({ x: new ort.Tensor('float32', x, [rows, length]) })).y.data as Float32Array;
      await session.release();
      expect(y.length).to.equal(rows * length);
      for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let i = 0; i < length; i++) {
          sum += x[r * length + i];
          const at = r * length + i;
          expect(y[at], `length ${length}, row ${r}, index ${i}`).to.be.closeTo(sum, 1e-5 * Math.max(1, sum));
          if (i > 0) expect(y[at], `non-decreasing at ${i}`).to.be.at.least(y[at - 1]);
        }
      }
    }
  });

  it('draws over a vocabulary of many blocks exactly as sampleFrom does', async () => {
    const random = new SeededRandom(12);
    const p = Array.from({ length: 20 * CUMSUM_BLOCK + 13 }, (_, id) => (id % 97 === 0 || id > 20 * CUMSUM_BLOCK ? random.uniform() : 0));
    const uniforms = Array.from({ length: 200 }, () => random.uniform());
    expect(await draws(p, uniforms)).to.deep.equal(uniforms.map((u) => sampleFrom(Float64Array.from(p), u)));
  });
});
