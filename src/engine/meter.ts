/**
 * Counts what a generation costs: graph runs by kind, time by phase, and the bytes of every input
 * and output tensor (what crosses between the host and the execution provider on each run).
 */

/** Which part of a speculative step a run belongs to. */
export type Phase = 'draft' | 'verify';

/** target: the target decoder; draft: the draft model or EAGLE head; head: a top-k LM head; logits: a sampling head. */
export type RunKind = 'target' | 'draft' | 'head' | 'logits';

export class RunMeter {
  readonly runs: Record<RunKind, number> = { target: 0, draft: 0, head: 0, logits: 0 };
  readonly milliseconds: Record<Phase, number> = { draft: 0, verify: 0 };
  bytes = 0;

  /** Times `run`, counts it, and adds the bytes `sizeOf` reports for its inputs and result. */
  async measure<T>(kind: RunKind, phase: Phase, inputBytes: number, run: () => Promise<T>, outputBytes: (result: T) => number): Promise<T> {
    const started = performance.now();
    const result = await run();
    this.milliseconds[phase] += performance.now() - started;
    this.runs[kind]++;
    this.bytes += inputBytes + outputBytes(result);
    return result;
  }

  /** Counts runs done inside another run (the graphs a fused Loop iteration calls). */
  count(kind: RunKind, runs: number): void {
    this.runs[kind] += runs;
  }
}

export const byteSize = (...arrays: readonly ({ byteLength: number } | undefined)[]): number => arrays.reduce((sum, a) => sum + (a?.byteLength ?? 0), 0);
