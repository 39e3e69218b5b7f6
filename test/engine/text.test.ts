import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderChat } from '../../src/engine/chat-template.js';
import { GenerationTokenizer, TextStream } from '../../src/engine/text.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { UserError } from '../../src/util/errors.js';
import { tinyTokenizerFiles } from './helpers/tiny-tokenizer.js';

describe('engine/text: prompts, chat templates, streamed decoding', () => {
  let root: string;
  const folder = (name: string, edit: (files: Record<string, string>) => void = () => {}) => {
    const dir = join(root, name);
    mkdirSync(dir);
    const files = tinyTokenizerFiles();
    edit(files);
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
    return dir;
  };
  const withoutTemplate = (files: Record<string, string>) => {
    const config = JSON.parse(files['tokenizer_config.json']);
    delete config.chat_template;
    files['tokenizer_config.json'] = JSON.stringify(config);
  };

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-engine-text-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('plain prompts get BOS; decoding drops special tokens', async () => {
    const tokenizer = await GenerationTokenizer.load(folder('plain'));
    const ids = await tokenizer.encodePrompt('a b');
    expect(ids).to.deep.equal([1, 8, 7, 9]);
    expect(tokenizer.decode([...ids, 5, 2])).to.equal('a b');
    expect(tokenizer.stopIds).to.deep.equal([2, 5]);
  });

  it('the shipped template and the hand-written Llama-3 format give the same prompt', async () => {
    const messages = [{ role: 'user' as const, content: ' hi ' }];
    const rendered = renderChat(await loadTokenizer(folder('templated')), messages);
    const fallback = renderChat(await loadTokenizer(folder('untemplated', withoutTemplate)), messages);
    expect(rendered).to.equal('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(fallback).to.equal(rendered);
  });

  it('ChatML without a template; other tokenizers without one are refused', async () => {
    const chatml = folder('chatml', (files) => {
      withoutTemplate(files);
      files['tokenizer.json'] = files['tokenizer.json'].replaceAll('<|start_header_id|>', '<|im_start|>').replaceAll('<|end_header_id|>', '<|im_end|>');
    });
    expect(renderChat(await loadTokenizer(chatml), [{ role: 'user', content: 'hi' }])).to.equal('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    const bare = folder('bare', (files) => {
      withoutTemplate(files);
      files['tokenizer.json'] = files['tokenizer.json'].replaceAll('<|start_header_id|>', '<|x|>');
    });
    const tokenizer = await loadTokenizer(bare);
    expect(() => renderChat(tokenizer, [{ role: 'user', content: 'hi' }])).to.throw(UserError, /ships no chat template/);
  });

  it('streams text as it becomes printable, holding back a split UTF-8 character', () => {
    const pieces: Record<number, string> = { 1: 'h', 2: 'é', 3: '\uFFFD' };
    // Token 3 alone decodes to U+FFFD; followed by token 4 the pair decodes to 🙂.
    const decode = (ids: readonly number[]) => ids.map((id, i) => (id === 3 && ids[i + 1] === 4 ? '🙂' : id === 4 ? '' : pieces[id])).join('');
    const stream = new TextStream(decode);
    expect(stream.push([1])).to.equal('h');
    expect(stream.push([2, 3])).to.equal('é');
    expect(stream.push([4])).to.equal('🙂');
    expect(stream.push([3])).to.equal('');
    expect(stream.flush()).to.equal('\uFFFD');
  });
});
