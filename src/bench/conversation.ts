/**
 * Asks one question, turn by turn: each turn's prompt holds the earlier turns and the method's own
 * answers to them (Spec-Bench feeds turns cumulatively), so a method that diverges from vanilla
 * in turn 1 is asked a different turn 2, as in the reference harness.
 */
import type { BenchQuestion, ChatMessage, GenerationOptions, MethodRunner, PromptEncoder, PromptStyle } from './types.js';

/** What one turn produced, as stored in results.jsonl. */
export interface TurnRecord {
  promptTokens: number;
  newTokens: number;
  wallSeconds: number;
  acceptLengths: number[];
  targetForwards: number;
  tokenIds: number[];
  text: string;
}

/** The prompt of the next turn, given the conversation so far. */
export interface PromptBuilder {
  next(turn: string): Promise<number[]>;
  /** Records the method's answer to the turn just asked. */
  answer(text: string): void;
}

export function promptBuilder(style: PromptStyle, encoder: PromptEncoder): PromptBuilder {
  if (style.kind === 'chat') {
    const messages: ChatMessage[] = style.system ? [{ role: 'system', content: style.system }] : [];
    return {
      async next(turn) {
        messages.push({ role: 'user', content: turn });
        return encoder.encodeChat(messages);
      },
      answer(text) {
        messages.push({ role: 'assistant', content: text.trim() });
      },
    };
  }
  let text = style.prefix;
  let turns = 0;
  return {
    async next(turn) {
      text += (turns++ > 0 ? '\n\n' : '') + turn;
      return encoder.encodePlain(text);
    },
    answer(answer) {
      text += answer;
    },
  };
}

export async function askQuestion(runner: MethodRunner, question: BenchQuestion, style: PromptStyle, encoder: PromptEncoder, options: GenerationOptions): Promise<TurnRecord[]> {
  const prompts = promptBuilder(style, encoder);
  const turns: TurnRecord[] = [];
  for (const turn of question.turns) {
    const promptIds = await prompts.next(turn);
    const result = await runner.generate(promptIds, options);
    prompts.answer(result.text);
    turns.push({
      promptTokens: promptIds.length,
      newTokens: result.newTokens,
      wallSeconds: result.wallSeconds,
      acceptLengths: result.acceptLengths,
      targetForwards: result.targetForwards,
      tokenIds: result.tokenIds,
      text: result.text,
    });
  }
  return turns;
}
