/** What `--stats` and `--json` report about one generation. */
import type { RunMeter } from './meter.js';
import type { Transcript } from './transcript.js';

export interface GenerationStats {
  method: string;
  promptTokens: number;
  newTokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Mean tokens committed per decoding cycle (= per verifying target forward), bonus token included. 1 for vanilla. */
  meanAcceptanceLength: number;
  cycles: number;
  /** Target graph runs, prompt chunks included. */
  targetForwards: number;
  /** Draft model or EAGLE head runs. */
  draftForwards: number;
  /** Draft LM head (top-k) runs. */
  headRuns: number;
  /** Full-logits head runs (sampling only). */
  logitsRuns: number;
  milliseconds: { draft: number; verify: number; host: number; total: number };
  /** Sum of input and output tensor bytes over all graph runs. */
  bytesMoved: number;
  bytesPerToken: number;
}

export function summarize(method: string, transcript: Transcript, meter: RunMeter, totalMs: number): GenerationStats {
  const newTokens = transcript.tokens.length - transcript.promptLength;
  const cycles = transcript.cycleLengths.length;
  const inCycles = transcript.cycleLengths.reduce((a, b) => a + b, 0);
  const { draft, verify } = meter.milliseconds;
  return {
    method,
    promptTokens: transcript.promptLength,
    newTokens,
    seconds: totalMs / 1000,
    tokensPerSecond: totalMs > 0 ? (newTokens * 1000) / totalMs : 0,
    meanAcceptanceLength: cycles > 0 ? inCycles / cycles : 0,
    cycles,
    targetForwards: meter.runs.target,
    draftForwards: meter.runs.draft,
    headRuns: meter.runs.head,
    logitsRuns: meter.runs.logits,
    milliseconds: { draft, verify, host: Math.max(0, totalMs - draft - verify), total: totalMs },
    bytesMoved: meter.bytes,
    bytesPerToken: newTokens > 0 ? meter.bytes / newTokens : 0,
  };
}
