/**
 * The additive attention mask of the model contract, [S, P+S] row-major: 0 where a new token may
 * attend, the most negative fp32 elsewhere. Built here for prompt chunks, trees and EAGLE's
 * expansion steps (whose nodes see only some of the rows past the shared prefix of the cache).
 */
import type { TokenTree } from './token-tree.js';

export const MASKED = -3.4028234663852886e38;

export interface BiasLayout {
  /** Rows in the cache (P). */
  pastLength: number;
  /** Every new token sees cache rows [0, sharedPast); default all of them. */
  sharedPast?: number;
  /** Per real node, further cache rows (≥ sharedPast) it sees: EAGLE's scratch rows of its ancestors. */
  extraPast?: readonly (readonly number[])[];
  /** The batch's tree: each node sees its ancestors within the batch and itself. */
  tree: TokenTree;
  /** Total rows fed (≥ tree size); rows past the tree are padding and see only themselves. */
  rows: number;
}

export function buildAttentionBias(layout: BiasLayout): Float32Array {
  const { pastLength: past, tree, rows } = layout;
  const shared = layout.sharedPast ?? past;
  const width = past + rows;
  const bias = new Float32Array(rows * width).fill(MASKED);
  const real = tree.tokens.length;
  for (let i = 0; i < rows; i++) {
    const row = bias.subarray(i * width, (i + 1) * width);
    if (i >= real) {
      row[past + i] = 0;
      continue;
    }
    row.fill(0, 0, shared);
    for (const col of layout.extraPast?.[i] ?? []) row[col] = 0;
    for (let n = i; n >= 0; n = tree.parents[n]) row[past + n] = 0;
  }
  return bias;
}
