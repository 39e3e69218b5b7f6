/**
 * Classic speculative sampling (Leviathan et al. 2023; Chen et al. 2023) over a chain of γ drafts
 * sampled from the draft's distributions q_i: accept draft x_i with probability min(1, p_i(x)/q_i(x));
 * at the first rejection sample from norm(max(0, p_i − q_i)); if all pass, sample the bonus from p_γ.
 */
import type { SeededRandom } from './random.js';
import { probabilityOf, residual, sampleFrom, type Distribution } from './sampling.js';
import type { DistributionAt } from './tree-verify.js';

export interface ChainResult {
  /** How many drafts were accepted. */
  accepted: number;
  /** The token after them. */
  next: number;
}

/** `targetAt(i)`: p after the i-th chain position (0 = before the first draft), for i = 0..γ. */
export async function speculativeSamplingChain(drafts: readonly number[], draftDistributions: readonly Distribution[], targetAt: DistributionAt, random: SeededRandom): Promise<ChainResult> {
  for (let i = 0; i < drafts.length; i++) {
    const p = await targetAt(i);
    const q = draftDistributions[i];
    const x = drafts[i];
    const qx = probabilityOf(q, x);
    const px = probabilityOf(p, x);
    // u < p/q written without the division; qx > 0 because x was drawn from q.
    if (random.uniform() * qx < px) continue;
    return { accepted: i, next: sampleFrom(residual(p, q), random.uniform()) };
  }
  return { accepted: drafts.length, next: sampleFrom(await targetAt(drafts.length), random.uniform()) };
}
