/**
 * Plain TypeScript reference math (float64, row-major flat arrays) that the ONNX graphs are checked
 * against. Written for clarity, not speed: inputs are tiny.
 */
import { expect } from 'chai';

export type Values = ArrayLike<number>;

/** The most negative fp32: what HF puts in masked cells of an additive mask. */
export const MASK_MIN = -3.4028234663852886e38;

/** Deterministic pseudo-random numbers (mulberry32). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  floats(count: number, scale = 1, offset = 0): Float32Array {
    return Float32Array.from({ length: count }, () => offset + scale * this.normal());
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
}

/** ‖actual − expected‖∞ / ‖expected‖∞. */
export function relativeError(actual: Values, expected: Values): number {
  expect(actual.length, 'length').to.equal(expected.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= maxDiff)) maxDiff = diff; // also catches NaN
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

export function expectClose(actual: Values, expected: Values, tolerance: number, label = 'values'): void {
  const error = relativeError(actual, expected);
  expect(error, `${label}: relative error ${error}`).to.be.below(tolerance);
}

export const FP32_TOLERANCE = 1e-4;
export const FP16_TOLERANCE = 2e-2;

/** [m, k] × [k, n]. */
export function matmul(a: Values, b: Values, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
      out[i * n + j] = sum;
    }
  }
  return out;
}

/** A Hugging Face Linear: x [rows, in] · Wᵀ (+ bias), W [out, in]. */
export function hfLinear(x: Values, rows: number, weight: Values, outFeatures: number, inFeatures: number, bias?: Values): Float64Array {
  const out = new Float64Array(rows * outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < inFeatures; i++) sum += x[r * inFeatures + i] * weight[o * inFeatures + i];
      out[r * outFeatures + o] = sum;
    }
  }
  return out;
}

export function rmsNorm(x: Values, rows: number, width: number, weight: Values, eps: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let sumSquares = 0;
    for (let i = 0; i < width; i++) sumSquares += x[r * width + i] ** 2;
    const scale = 1 / Math.sqrt(sumSquares / width + eps);
    for (let i = 0; i < width; i++) out[r * width + i] = x[r * width + i] * scale * weight[i];
  }
  return out;
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

/** down(silu(gate(x)) · up(x)) with HF weights [out, in]. */
export function swiGlu(x: Values, rows: number, d: number, inner: number, gate: Values, up: Values, down: Values): Float64Array {
  const g = hfLinear(x, rows, gate, inner, d);
  const u = hfLinear(x, rows, up, inner, d);
  const product = g.map((v, i) => silu(v) * u[i]);
  return hfLinear(product, rows, down, d, inner);
}

/** Rotate-half RoPE on x [S, heads, D] for one position per row; angles rounded to fp32 like the graph. */
export function applyRope(x: Values, positions: readonly number[], heads: number, headDim: number, invFreq: Values): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(x.length);
  positions.forEach((position, s) => {
    for (let h = 0; h < heads; h++) {
      const base = (s * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(Math.fround(position) * invFreq[i]);
        const cos = Math.cos(angle);
        const sin = Math.sin(angle);
        const x1 = x[base + i];
        const x2 = x[base + half + i];
        out[base + i] = x1 * cos - x2 * sin;
        out[base + half + i] = x2 * cos + x1 * sin;
      }
    }
  });
  return out;
}

export function softmaxInPlace(row: Float64Array): Float64Array {
  const max = Math.max(...row);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += row[i] = Math.exp(row[i] - max);
  for (let i = 0; i < row.length; i++) row[i] /= sum;
  return row;
}

export function logSoftmaxRows(x: Values, rows: number, width: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let i = 0; i < width; i++) max = Math.max(max, x[r * width + i]);
    let sum = 0;
    for (let i = 0; i < width; i++) sum += Math.exp(x[r * width + i] - max);
    const logSum = max + Math.log(sum);
    for (let i = 0; i < width; i++) out[r * width + i] = x[r * width + i] - logSum;
  }
  return out;
}

/**
 * Attention with KV heads repeated as HF's repeat_kv does (query head h reads KV head
 * ⌊h / (heads / kvHeads)⌋). q [S, heads, D]; keys/values [T, kvHeads, D]; mask [S, T] additive.
 * Returns [S, heads·D].
 */
export function attention(q: Values, keys: Values, values: Values, mask: Values, s: number, t: number, heads: number, kvHeads: number, headDim: number): Float64Array {
  const groupSize = heads / kvHeads;
  const out = new Float64Array(s * heads * headDim);
  for (let h = 0; h < heads; h++) {
    const kvHead = Math.floor(h / groupSize);
    for (let i = 0; i < s; i++) {
      const scores = new Float64Array(t);
      for (let j = 0; j < t; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[(i * heads + h) * headDim + d] * keys[(j * kvHeads + kvHead) * headDim + d];
        scores[j] = dot / Math.sqrt(headDim) + mask[i * t + j];
      }
      softmaxInPlace(scores);
      for (let d = 0; d < headDim; d++) {
        let sum = 0;
        for (let j = 0; j < t; j++) sum += scores[j] * values[(j * kvHeads + kvHead) * headDim + d];
        out[(i * heads + h) * headDim + d] = sum;
      }
    }
  }
  return out;
}

/** Per-row index of the maximum (first on ties). */
export function argmaxRows(x: Values, rows: number, width: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < width; i++) if (x[r * width + i] > x[r * width + best]) best = i;
    return best;
  });
}

/** Per-row indices of the k largest values, descending. */
export function topKRows(x: Values, rows: number, width: number, k: number): number[][] {
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: width }, (_, i) => i)
      .sort((a, b) => x[r * width + b] - x[r * width + a] || a - b)
      .slice(0, k),
  );
}

/** Additive mask [S, P+S]: all past visible, and new token i sees new token j when `visible(i, j)`. */
export function additiveMask(s: number, past: number, visible: (i: number, j: number) => boolean): Float32Array {
  const t = past + s;
  const mask = new Float32Array(s * t);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) if (!visible(i, j)) mask[i * t + past + j] = MASK_MIN;
  return mask;
}

export const causalMask = (s: number, past: number) => additiveMask(s, past, (i, j) => j <= i);

/** Tree mask from parent links (parents before children): a node sees itself and its ancestors. */
export function treeMask(parents: readonly number[], past: number): Float32Array {
  const isAncestorOrSelf = (i: number, j: number): boolean => {
    for (let node = i; node >= 0; node = parents[node]) if (node === j) return true;
    return false;
  };
  return additiveMask(parents.length, past, isAncestorOrSelf);
}

export function concat(...parts: Values[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
