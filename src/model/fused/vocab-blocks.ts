/** How the two-level reductions over the vocabulary split it (vocab-reductions.ts, sampling-ops.ts). */

/** Preferred ids per block: about the square root of a 128k vocabulary, and the fastest width measured. */
export const VOCAB_BLOCK = 256;

/**
 * The block width for a vocabulary of `vocab` ids: the divisor of `vocab` (at most 1024, at least 2 blocks)
 * closest to VOCAB_BLOCK, or to √vocab for a small vocabulary; undefined when there is none (then the
 * reduction stays one-level).
 */
export function vocabBlockWidth(vocab: number): number | undefined {
  const preferred = Math.min(VOCAB_BLOCK, Math.sqrt(vocab));
  let best: number | undefined;
  for (let width = 2; width <= Math.min(1024, vocab / 2); width++) {
    if (vocab % width !== 0) continue;
    if (best === undefined || Math.abs(Math.log(width / preferred)) < Math.abs(Math.log(best / preferred))) best = width;
  }
  return best;
}
