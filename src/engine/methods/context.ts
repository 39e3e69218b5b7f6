/** What every decoding method works with, and the target's token choice (greedy or sampled). */
import type { FloatData } from '../../model/float-data.js';
import type { ForwardOutput, KvDecoder } from '../decoder.js';
import type { LogitsHead } from '../logits-head.js';
import type { Phase, RunMeter } from '../meter.js';
import type { SeededRandom } from '../random.js';
import { distributionFromLogits, isGreedy, sampleFrom, type Distribution, type SamplingParams } from '../sampling.js';
import type { Transcript } from '../transcript.js';

/**
 * A decoder's next-token choice: its graph's argmax when greedy, else a draw from the sampling
 * distribution of its LM head applied to the node's hidden state.
 */
export class TokenChooser {
  constructor(
    readonly sampling: SamplingParams,
    private readonly random: SeededRandom,
    private readonly meter: RunMeter,
    private readonly phase: Phase,
    private readonly logitsHead?: LogitsHead,
  ) {
    if (!isGreedy(sampling) && !logitsHead) throw new Error('sampling needs an LM head for full logits');
  }

  get greedy(): boolean {
    return isGreedy(this.sampling);
  }

  /** The sampling distribution after the token whose hidden state is `state` ([d]). */
  async distribution(state: FloatData): Promise<Distribution> {
    const logits = await this.logitsHead!.logits(state, this.meter, this.phase);
    return distributionFromLogits(logits, this.sampling);
  }

  /** Memoizes distribution() per node of one forward (a walk may ask twice). */
  distributionsOf(decoder: KvDecoder, out: ForwardOutput): (node: number) => Promise<Distribution> {
    const cache = new Map<number, Promise<Distribution>>();
    return (node) => {
      let p = cache.get(node);
      if (!p) {
        p = this.distribution(decoder.state(out, node));
        cache.set(node, p);
      }
      return p;
    };
  }

  async choose(decoder: KvDecoder, out: ForwardOutput, node: number): Promise<number> {
    if (this.greedy) return Number(out.argmax![node]);
    return sampleFrom(await this.distribution(decoder.state(out, node)), this.random.uniform());
  }
}

export interface MethodContext {
  transcript: Transcript;
  meter: RunMeter;
  random: SeededRandom;
  target: KvDecoder;
  /** The target's next-token choice (verify phase). */
  targetChoice: TokenChooser;
}

export const argmaxOf = (out: ForwardOutput) => (node: number) => Number(out.argmax![node]);

export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
