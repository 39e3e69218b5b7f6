import { UserError } from '../util/errors.js';

/** Occurrences per token id; index = token id, length = vocabulary size. */
export type TokenCounts = ArrayLike<number>;

/**
 * All token ids ordered by count descending, ties by id ascending, so the ranking does not depend
 * on corpus order or worker scheduling. Ids never seen (count 0) come last, by id.
 */
export function rankTokens(counts: TokenCounts): Int32Array {
  assertValidCounts(counts);
  const ids = new Int32Array(counts.length);
  for (let id = 0; id < ids.length; id++) ids[id] = id;
  return ids.sort((a, b) => counts[b] - counts[a] || a - b);
}

function assertValidCounts(counts: TokenCounts): void {
  for (let id = 0; id < counts.length; id++) {
    const count = counts[id];
    if (!(count >= 0) || !Number.isFinite(count)) {
      throw new RangeError(`count of token ${id} is ${count}; counts must be finite and non-negative`);
    }
  }
}

/**
 * Exactly `r` distinct ids: the `r` most frequent, except that required ids (EOS, end-of-turn) missing
 * from the top r are appended, in the order given, in place of the least frequent ids that are not
 * required. A required id already inside the top r keeps its place, even near the cut-off.
 *
 * Unlike the reference fr.py, this never yields r+1 ids or duplicates (fr-spec.md §5 point 2).
 */
export function buildSubset(ranked: Int32Array, r: number, requiredIds: readonly number[]): Int32Array {
  const vocabSize = ranked.length;
  const required = uniqueRequiredIds(requiredIds, vocabSize);
  assertSubsetSize(r, vocabSize, required);

  const top = ranked.subarray(0, r);
  const inTop = new Set(top);
  const missing = required.filter((id) => !inTop.has(id));
  const dropped = leastFrequentNotRequired(top, new Set(required), missing.length);

  const subset = new Int32Array(r);
  let length = 0;
  for (const id of top) if (!dropped.has(id)) subset[length++] = id;
  for (const id of missing) subset[length++] = id;
  return subset;
}

/** The `count` lowest-ranked ids of `top` that are not required (there are always enough: r ≥ required). */
function leastFrequentNotRequired(top: Int32Array, required: ReadonlySet<number>, count: number): Set<number> {
  const dropped = new Set<number>();
  for (let i = top.length - 1; i >= 0 && dropped.size < count; i--) {
    if (!required.has(top[i])) dropped.add(top[i]);
  }
  return dropped;
}

function uniqueRequiredIds(requiredIds: readonly number[], vocabSize: number): number[] {
  for (const id of requiredIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`required token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
    }
  }
  return [...new Set(requiredIds)];
}

function assertSubsetSize(r: number, vocabSize: number, required: readonly number[]): void {
  if (!Number.isInteger(r) || r < 1) {
    throw new UserError(`subset size ${r} is not a positive integer`);
  }
  if (r > vocabSize) {
    throw new UserError(`subset size ${r} is larger than the tokenizer's vocabulary (${vocabSize})`);
  }
  if (r < required.length) {
    throw new UserError(
      `subset size ${r} is smaller than the number of stop tokens it must keep (${required.length}: ${required.join(', ')})`,
    );
  }
}

/** Share of all counted occurrences that `ids` cover (0 when nothing was counted). */
export function coverage(counts: TokenCounts, ids: ArrayLike<number>): number {
  let total = 0;
  for (let id = 0; id < counts.length; id++) total += counts[id];
  if (total === 0) return 0;
  let covered = 0;
  for (let i = 0; i < ids.length; i++) covered += counts[ids[i]];
  return covered / total;
}

/** Parses `--sizes 8192,16384,32768,65536` into distinct subset sizes, ascending. */
export function parseSizes(text: string, vocabSize: number): number[] {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`invalid vocabulary size ${vocabSize}`);
  if (text.trim() === '') {
    throw new UserError('--sizes: expected subset sizes separated by commas (e.g. 8192,16384,32768,65536), got an empty list');
  }
  const sizes: number[] = [];
  for (const entry of text.split(',').map((part) => part.trim())) {
    const size = parseSize(entry, text, vocabSize);
    if (sizes.includes(size)) throw new UserError(`--sizes: ${size} is listed more than once`);
    sizes.push(size);
  }
  return sizes.sort((a, b) => a - b);
}

function parseSize(entry: string, wholeText: string, vocabSize: number): number {
  if (entry === '') {
    throw new UserError(`--sizes: empty entry in "${wholeText}" (expected sizes separated by single commas)`);
  }
  if (!/^[+-]?\d+$/.test(entry)) throw new UserError(`--sizes: "${entry}" is not an integer`);
  const size = Number(entry);
  const shown = Number.isSafeInteger(size) ? String(size) : entry;
  if (size < 1) throw new UserError(`--sizes: ${shown} is not a positive subset size (sizes must be at least 1)`);
  if (size > vocabSize) {
    throw new UserError(`--sizes: ${shown} is larger than the tokenizer's vocabulary (${vocabSize})`);
  }
  return size;
}
