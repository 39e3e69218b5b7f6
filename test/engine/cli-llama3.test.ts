/**
 * The fresh-clone path of `fr-spec generate` on a model with the Llama-3 tokenizer: with no
 * --vocab-map, fr-spec finds the repository's vocab-maps/llama3/freq_32768.json by the tokenizer's
 * hash, and its text equals vanilla's; --chat uses the Llama-3 template.
 */
import { expect } from 'chai';
import { Command } from 'commander';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerGenerate } from '../../src/cli/generate.js';
import { presetFolder } from '../../src/tokenizer/presets.js';
import { writeModelSet } from './helpers/model-sets.js';

async function generate(args: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command().exitOverride();
  registerGenerate(program, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, readStdin: async () => undefined });
  await program.parseAsync(['generate', ...args], { from: 'user' });
  expect(err.join(''), 'no warnings').to.equal('');
  return out.join('');
}

describe('cli: fr-spec generate with the Llama-3 tokenizer and the shipped 32k map', function () {
  let root: string;
  let model: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-generate-llama3-'));
    const dir = presetFolder('llama3');
    const tokenizerFiles = Object.fromEntries(['tokenizer.json', 'tokenizer_config.json'].map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
    model = (await writeModelSet(root, { vocabSize: 128256, attention: 0.3, seed: 17, numLayers: 1, tokenizerFiles })).dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('fr-spec (default method and map) writes the same text as vanilla', async () => {
    const frSpec = JSON.parse(await generate(['--model', model, '--max-new-tokens', '24', '--json', 'Once upon a time']));
    const vanilla = JSON.parse(await generate(['--model', model, '--method', 'vanilla', '--max-new-tokens', '24', '--json', 'Once upon a time']));
    expect(frSpec.settings).to.include({ method: 'fr-spec', vocab_map_size: 32768 });
    expect(frSpec.prompt_tokens).to.deep.equal([128000, 12805, 5304, 264, 892]);
    expect(frSpec.tokens).to.deep.equal(vanilla.tokens);
    expect(frSpec.text).to.equal(vanilla.text);
  });

  it('--chat renders the Llama-3 template', async () => {
    const record = JSON.parse(await generate(['--model', model, '--method', 'vanilla', '--chat', '--max-new-tokens', '2', '--json', 'Hi']));
    expect(record.prompt_tokens).to.deep.equal([128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271]);
  });
});
