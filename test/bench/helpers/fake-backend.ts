/**
 * A decoding backend without a model: each method answers a prompt with a deterministic token
 * stream (a function of the prompt ids), commits it in steps of known lengths, and reports a wall
 * time from a fake cost model (prefill + per-step cost), so no test sleeps or reads a clock.
 */
import type { BenchBackend, ChatMessage, GenerationOptions, GenerationResult, MethodRunner, MethodSpec, PromptEncoder } from '../../../src/bench/types.js';

export interface FakeMethodBehaviour {
  /** Tokens committed per decoding step, cycled (vanilla: [1]). */
  steps: number[];
  /** Seconds per decoding step and for the prefill (which also yields the first token). */
  stepSeconds: number;
  prefillSeconds: number;
  /** Makes the answer differ from vanilla's for prompts whose length is odd. */
  diverges?: boolean;
}

export const BEHAVIOURS: Record<string, FakeMethodBehaviour> = {
  vanilla: { steps: [1], stepSeconds: 0.01, prefillSeconds: 0.02 },
  eagle2: { steps: [3, 4, 2], stepSeconds: 0.015, prefillSeconds: 0.02 },
  sps: { steps: [2], stepSeconds: 0.012, prefillSeconds: 0.03 },
  ouroboros: { steps: [3], stepSeconds: 0.012, prefillSeconds: 0.03 },
  'fr-spec': { steps: [3, 4, 2], stepSeconds: 0.012, prefillSeconds: 0.02 },
};

/** Answer length: 5 to 12 tokens, from the prompt. */
export function answerFor(promptIds: readonly number[], maxNewTokens: number): number[] {
  const seed = promptIds.reduce((a, b) => (a * 31 + b) % 9973, 7);
  const length = Math.min(maxNewTokens, 5 + (seed % 8));
  return Array.from({ length }, (_, i) => (seed + i * 17) % 50 + 10);
}

export interface GenerateCall {
  method: string;
  promptIds: number[];
  options: GenerationOptions;
}

/** Characters as ids; a chat message is a role marker, its content, and an end marker. */
export const fakeEncoder: PromptEncoder = {
  encodeChat: (messages: readonly ChatMessage[]) => [
    ...messages.flatMap((m) => [m.role === 'system' ? 1 : m.role === 'user' ? 2 : 3, ...[...m.content].map((c) => c.codePointAt(0)! % 1000), 4]),
    3,
  ],
  encodePlain: (text: string) => [...text].map((c) => c.codePointAt(0)! % 1000),
};

export const decodeFake = (ids: readonly number[]) => ids.map((id) => String.fromCharCode(97 + (id % 26))).join('');

export class FakeBackend implements BenchBackend {
  readonly device = 'cpu';
  readonly prompts = fakeEncoder;
  readonly calls: GenerateCall[] = [];
  readonly created: string[] = [];
  closed = false;
  /** Called before each generation; a test can abort there. */
  beforeGenerate?: (call: GenerateCall) => void;

  constructor(private readonly behaviours: Record<string, FakeMethodBehaviour> = BEHAVIOURS) {}

  createRunner = async (spec: MethodSpec): Promise<MethodRunner> => {
    const behaviour = this.behaviours[spec.label] ?? this.behaviours[spec.method];
    if (!behaviour) throw new Error(`no fake behaviour for ${spec.label}`);
    this.created.push(spec.label);
    return {
      name: spec.label,
      generate: async (promptIds, options) => {
        const call = { method: spec.label, promptIds: [...promptIds], options };
        this.beforeGenerate?.(call);
        this.calls.push(call);
        return fakeGeneration(promptIds, options, behaviour);
      },
    };
  };

  async close(): Promise<void> {
    this.closed = true;
  }
}

export function fakeGeneration(promptIds: readonly number[], options: GenerationOptions, behaviour: FakeMethodBehaviour): GenerationResult {
  const tokens = answerFor(promptIds, options.maxNewTokens);
  if (behaviour.diverges && promptIds.length % 2 === 1) tokens[tokens.length - 1] += 1;
  const acceptLengths: number[] = [];
  let committed = 1;
  for (let i = 0; committed < tokens.length; i++) {
    const step = Math.min(behaviour.steps[i % behaviour.steps.length], tokens.length - committed);
    acceptLengths.push(step);
    committed += step;
  }
  return {
    tokenIds: tokens,
    text: decodeFake(tokens),
    newTokens: tokens.length,
    wallSeconds: behaviour.prefillSeconds + acceptLengths.length * behaviour.stepSeconds,
    acceptLengths,
    targetForwards: 1 + acceptLengths.length,
  };
}
