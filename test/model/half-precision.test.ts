/**
 * fp32 → fp16 conversion (half-precision.ts) against @petamoriken/float16's Float16Array, value for
 * value: every fp16 value, the midpoints between neighbours (ties to even), overflow, subnormals and
 * a million random floats over the whole exponent range.
 */
import { Float16Array } from '@petamoriken/float16';
import { expect } from 'chai';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/model/half-precision.js';
import { SeededRandom } from '../../src/engine/random.js';

function referenceBits(values: Float32Array): Uint16Array {
  const halves = new Float16Array(values);
  return new Uint16Array(halves.buffer, halves.byteOffset, halves.length);
}

function expectSameBits(values: Float32Array, label: string): void {
  const actual = float32ToFloat16Bits(values);
  const expected = referenceBits(values);
  for (let i = 0; i < values.length; i++) {
    if (actual[i] !== expected[i]) expect.fail(`${label}: ${values[i]} → 0x${actual[i].toString(16)}, expected 0x${expected[i].toString(16)}`);
  }
}

describe('model/half-precision: fp32 → fp16 bits', () => {
  const allHalves = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((bits) => (bits & 0x7c00) !== 0x7c00 || (bits & 0x3ff) === 0);

  it('round-trips every finite fp16 value and ±Infinity exactly', () => {
    const decoded = float16BitsToFloat32(allHalves);
    expect([...float32ToFloat16Bits(decoded)]).to.deep.equal([...allHalves]);
  });

  it('rounds midpoints between neighbouring halves to even, as the reference does', () => {
    const positive = float16BitsToFloat32(Uint16Array.from({ length: 0x7bff }, (_, i) => i));
    const midpoints = new Float32Array(positive.length - 1).map((_, i) => (positive[i] + positive[i + 1]) / 2);
    const nudged = [...midpoints].flatMap((m) => [m, Math.fround(m * (1 + 2 ** -20)), Math.fround(m * (1 - 2 ** -20)), -m]);
    expectSameBits(Float32Array.from(nudged), 'midpoints');
    // 1 + 2^-11 lies halfway between 1 and the next half: ties go to the even mantissa (1).
    expect(float32ToFloat16Bits(Float32Array.of(1 + 2 ** -11))[0]).to.equal(0x3c00);
    expect(float32ToFloat16Bits(Float32Array.of(1 + 3 * 2 ** -11))[0]).to.equal(0x3c02);
  });

  it('overflows to Infinity, flushes below half the smallest subnormal to zero, keeps NaN a NaN', () => {
    const edges = Float32Array.of(65504, 65519.996, 65520, 1e9, -1e9, 2 ** -24, 2 ** -25, Math.fround(2 ** -25 * 1.0001), 2 ** -26, 1e-30, -0, 0, Infinity, -Infinity, 2 ** -14, 2 ** -14 - 2 ** -25);
    expectSameBits(edges, 'edges');
    expect(float32ToFloat16Bits(Float32Array.of(65520))[0]).to.equal(0x7c00);
    expect(float32ToFloat16Bits(Float32Array.of(2 ** -25))[0]).to.equal(0);
    const nan = float32ToFloat16Bits(Float32Array.of(NaN))[0];
    expect(nan & 0x7c00).to.equal(0x7c00);
    expect(nan & 0x3ff).to.not.equal(0);
  });

  it('equals the reference on a million random floats from 2^-30 to 2^20', () => {
    const random = new SeededRandom(16);
    const values = Float32Array.from({ length: 1_000_000 }, () => (random.uniform() < 0.5 ? -1 : 1) * 2 ** (random.uniform() * 50 - 30));
    expectSameBits(values, 'random');
  });
});
