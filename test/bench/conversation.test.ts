import { expect } from 'chai';
import { askQuestion, promptBuilder } from '../../src/bench/conversation.js';
import type { ChatMessage, GenerationOptions, MethodRunner, PromptEncoder } from '../../src/bench/types.js';

/** Records what it is asked to encode; ids are just the message count. */
function recordingEncoder() {
  const chats: ChatMessage[][] = [];
  const plains: string[] = [];
  const encoder: PromptEncoder = {
    encodeChat: async (messages) => {
      chats.push(messages.map((m) => ({ ...m })));
      return [messages.length];
    },
    encodePlain: (text) => {
      plains.push(text);
      return [text.length];
    },
  };
  return { encoder, chats, plains };
}

const answering = (texts: string[]): MethodRunner => {
  let i = 0;
  return {
    name: 'fake',
    generate: async (promptIds) => ({ tokenIds: [i], text: texts[i++], newTokens: 3, wallSeconds: 0.5, acceptLengths: [2], targetForwards: 2 + promptIds.length }),
  };
};

const OPTIONS: GenerationOptions = { maxNewTokens: 16, temperature: 0, seed: 0 };

describe('bench conversations', function () {
  it('feeds turns cumulatively with the method\'s own (trimmed) answers, system message first', async function () {
    const { encoder, chats } = recordingEncoder();
    const turns = await askQuestion(answering(['  First answer.\n', 'Second.']), { id: '1', category: 'c', turns: ['Q1', 'Q2'] }, { kind: 'chat', system: 'Be brief.' }, encoder, OPTIONS);
    expect(chats).to.deep.equal([
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Q1' },
      ],
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Q1' },
        { role: 'assistant', content: 'First answer.' },
        { role: 'user', content: 'Q2' },
      ],
    ]);
    expect(turns).to.deep.equal([
      { promptTokens: 1, newTokens: 3, wallSeconds: 0.5, acceptLengths: [2], targetForwards: 3, tokenIds: [0], text: '  First answer.\n' },
      { promptTokens: 1, newTokens: 3, wallSeconds: 0.5, acceptLengths: [2], targetForwards: 3, tokenIds: [1], text: 'Second.' },
    ]);
  });

  it('asks plain prompts as prefix + turn, continuing the text for a later turn', async function () {
    const { encoder, plains } = recordingEncoder();
    const prompts = promptBuilder({ kind: 'plain', prefix: 'Q: 1+1?\nA: 2.\n\n' }, encoder);
    await prompts.next('Q: 2+2?\nA:');
    prompts.answer(' 4.');
    await prompts.next('Q: 3+3?\nA:');
    expect(plains).to.deep.equal(['Q: 1+1?\nA: 2.\n\nQ: 2+2?\nA:', 'Q: 1+1?\nA: 2.\n\nQ: 2+2?\nA: 4.\n\nQ: 3+3?\nA:']);
  });

  it('sends no system message when there is none', async function () {
    const { encoder, chats } = recordingEncoder();
    await promptBuilder({ kind: 'chat' }, encoder).next('Hi');
    expect(chats).to.deep.equal([[{ role: 'user', content: 'Hi' }]]);
  });
});
