/**
 * The prompt and the tokens committed after it, with the rules that end a generation: a stop id
 * (kept as the last token), the new-token budget, or the model's context length. Methods commit
 * whatever a step accepted; the transcript keeps only what the rules allow, so overshooting drafts
 * never leak into the output.
 */
import { UserError } from '../util/errors.js';

/** Refuses a prompt with an id the model cannot embed. */
export function checkPromptIds(prompt: readonly number[], vocabSize: number): void {
  const outside = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (outside !== undefined) throw new UserError(`prompt token id ${outside} is outside the model's vocabulary (0..${vocabSize - 1})`);
}

export type StopReason = 'stop-token' | 'max-new-tokens' | 'context-length';

export interface TranscriptLimits {
  maxNewTokens: number;
  stopIds: readonly number[];
  /** Most tokens (prompt included) the model may see. */
  contextLength: number;
}

export class Transcript {
  readonly tokens: number[];
  readonly promptLength: number;
  /** Tokens committed by each decoding cycle (the first token, from the prompt's forward, is not a cycle). */
  readonly cycleLengths: number[] = [];
  stopReason?: StopReason;
  private readonly stopIds: Set<number>;

  constructor(
    prompt: readonly number[],
    private readonly limits: TranscriptLimits,
    private readonly onTokens?: (tokens: readonly number[]) => void,
  ) {
    if (prompt.length === 0) throw new UserError('the prompt is empty');
    if (prompt.length >= limits.contextLength) {
      throw new UserError(`the prompt has ${prompt.length} tokens but the model's context holds ${limits.contextLength}; shorten the prompt`);
    }
    if (!(limits.maxNewTokens >= 1)) throw new UserError('--max-new-tokens must be at least 1');
    this.tokens = [...prompt];
    this.promptLength = prompt.length;
    this.stopIds = new Set(limits.stopIds);
  }

  get generated(): number[] {
    return this.tokens.slice(this.promptLength);
  }

  get done(): boolean {
    return this.stopReason !== undefined;
  }

  get last(): number {
    return this.tokens[this.tokens.length - 1];
  }

  /** Commits `tokens` (as far as the rules allow) and returns how many were kept. */
  commit(tokens: readonly number[], asCycle = true): number {
    if (this.done) return 0;
    const kept: number[] = [];
    for (const token of tokens) {
      kept.push(token);
      const newCount = this.tokens.length + kept.length - this.promptLength;
      if (this.stopIds.has(token)) this.stopReason = 'stop-token';
      else if (newCount >= this.limits.maxNewTokens) this.stopReason = 'max-new-tokens';
      else if (this.tokens.length + kept.length >= this.limits.contextLength) this.stopReason = 'context-length';
      if (this.done) break;
    }
    this.tokens.push(...kept);
    if (asCycle) this.cycleLengths.push(kept.length);
    if (kept.length > 0) this.onTokens?.(kept);
    return kept.length;
  }
}
