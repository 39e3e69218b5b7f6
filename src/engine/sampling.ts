/**
 * The target's sampling distribution (temperature, then nucleus/top-p) and draws from it. All
 * methods use these same functions, so "the target's distribution" means one thing everywhere.
 */
import { UserError } from '../util/errors.js';

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches topP. 1 = off. */
  topP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topP: 1 };

export const isGreedy = (params: SamplingParams): boolean => params.temperature <= 0;

/** Refuses settings no method can use: a negative or infinite temperature, top-p outside (0, 1]. */
export function checkSampling({ temperature, topP }: SamplingParams): void {
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new UserError(`temperature must be ≥ 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new UserError(`top-p must be in (0, 1], got ${topP}`);
}

/** A probability vector over token ids (float64 so repeated renormalization stays exact enough). */
export type Distribution = Float64Array;

/** softmax(logits / temperature), then top-p truncation and renormalization. */
export function distributionFromLogits(logits: ArrayLike<number>, params: SamplingParams): Distribution {
  if (isGreedy(params)) throw new Error('a greedy run has no sampling distribution');
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i] - max) / params.temperature);
    p[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  return params.topP < 1 ? nucleus(p, params.topP) : p;
}

/** Keeps the most likely tokens (ties toward the lower id) until their mass reaches topP. */
function nucleus(p: Distribution, topP: number): Distribution {
  const order = Array.from(p.keys()).sort((x, y) => p[y] - p[x] || x - y);
  const kept = new Float64Array(p.length);
  let mass = 0;
  for (const id of order) {
    kept[id] = p[id];
    mass += p[id];
    if (mass >= topP) break;
  }
  for (let i = 0; i < kept.length; i++) kept[i] /= mass;
  return kept;
}

/** Inverse-CDF draw with a uniform u in [0, 1); ids in ascending order. */
export function sampleFrom(p: Distribution, u: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) total += p[i];
  let threshold = u * total;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] <= 0) continue;
    last = i;
    threshold -= p[i];
    if (threshold < 0) return i;
  }
  if (last < 0) throw new Error('cannot sample from an all-zero distribution');
  return last; // rounding left a sliver of mass past the end
}

/** Probability of `id`, 0 for ids the distribution does not cover. */
export const probabilityOf = (p: Distribution, id: number): number => (id >= 0 && id < p.length ? p[id] : 0);

/** p with `id` removed and the rest renormalized, in place (a rejected sibling's residual). */
export function removeAndRenormalize(p: Distribution, id: number): void {
  if (id < 0 || id >= p.length || p[id] === 0) return;
  const remaining = 1 - p[id];
  p[id] = 0;
  if (remaining <= 0) return; // every draft had all the mass: the caller never samples from here
  for (let i = 0; i < p.length; i++) p[i] /= remaining;
}

/** norm(max(0, p − q)) over p's ids: the Leviathan/Chen residual after a rejected draft. */
export function residual(p: Distribution, q: Distribution): Distribution {
  const out = new Float64Array(p.length);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const value = Math.max(0, p[i] - (i < q.length ? q[i] : 0));
    out[i] = value;
    sum += value;
  }
  if (sum <= 0) return Float64Array.from(p); // p ≤ q everywhere only when p = q: then any draw from p is right
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}
