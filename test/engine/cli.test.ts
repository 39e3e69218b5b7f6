/**
 * fr-spec generate through its commander registration: prompts from every source, streamed text,
 * --json and --stats, --chat, and the one-line errors for bad input.
 */
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerGenerate } from '../../src/cli/generate.js';
import { DEMO_MODEL_DIR, REPO_VOCAB_MAPS_DIR } from '../../src/engine/paths.js';
import { UserError } from '../../src/util/errors.js';
import { runExportCli } from '../model/helpers/tiny-models.js';
import { writeModelSet } from './helpers/model-sets.js';
import { TINY_VOCAB_SIZE, tinyTokenizerFiles } from './helpers/tiny-tokenizer.js';

interface CliRun {
  stdout: string[];
  stderr: string[];
  error?: Error;
}

async function generate(args: string[], stdin?: string): Promise<CliRun> {
  const run: CliRun = { stdout: [], stderr: [] };
  const program = new Command();
  program.exitOverride().configureOutput({ writeErr: (s) => run.stderr.push(s), writeOut: (s) => run.stdout.push(s) });
  registerGenerate(program, { stdout: { write: (s: string) => run.stdout.push(s) }, stderr: { write: (s: string) => run.stderr.push(s) }, readStdin: async () => stdin });
  try {
    await program.parseAsync(['generate', ...args], { from: 'user' });
  } catch (error) {
    run.error = error as Error;
  }
  return run;
}

function expectUserError(run: CliRun, pattern: RegExp): void {
  expect(run.error, 'should fail').to.be.instanceOf(UserError);
  expect(run.error!.message).to.match(pattern);
  expect(run.error!.message, 'one line').not.to.include('\n');
  expect((run.error as UserError).exitCode).to.be.above(0);
}

describe('cli: fr-spec generate', () => {
  let root: string;
  let model: string;
  let targetOnly: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-generate-cli-'));
    const files = tinyTokenizerFiles();
    // A frequency map for this tokenizer, shipped in the model folder's vocab-maps/.
    const maps = join(root, 'maps');
    mkdirSync(maps);
    writeFileSync(join(maps, 'freq_16.json'), JSON.stringify(Array.from({ length: 16 }, (_, i) => (i * 3 + 2) % TINY_VOCAB_SIZE)));
    const sha256 = createHash('sha256').update(files['tokenizer.json']).digest('hex');
    writeFileSync(join(maps, 'manifest.json'), JSON.stringify({ tokenizer: { name: 'tiny', sha256, vocab_size: TINY_VOCAB_SIZE } }));
    model = (await writeModelSet(join(root, 'set'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 21, tokenizerFiles: files, vocabMaps: maps })).dir;
    // The same target without EAGLE head or draft model.
    targetOnly = join(root, 'target-only');
    await runExportCli(['--target', join(root, 'set', 'target'), '--out', targetOnly, '--dtype', 'fp32']);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('streams the text of every method; greedy text is the same for all', async () => {
    const texts: string[] = [];
    for (const method of ['vanilla', 'sps', 'eagle2', 'fr-spec', 'ouroboros']) {
      const extra = method === 'fr-spec' ? ['--vocab-map', '16'] : [];
      const run = await generate(['--model', model, '--method', method, '--max-new-tokens', '30', '--ep', 'cpu', ...extra, 'once upon a time']);
      expect(run.error, run.error?.message).to.equal(undefined);
      expect(run.stdout.length, `${method}: written in pieces as tokens commit`).to.be.above(2);
      texts.push(run.stdout.join(''));
    }
    expect(texts[0]).to.match(/\n$/);
    expect(new Set(texts).size, texts.join(' | ')).to.equal(1);
  });

  it('--json: one record with text, ids and statistics; --stats: a summary on stderr', async () => {
    const run = await generate(['--model', model, '--method', 'eagle2', '--tree-depth', '3', '--tree-topk', '2', '--tree-tokens', '5', '--max-new-tokens', '12', '--json', '--stats', '--prompt', 'hi']);
    expect(run.error, run.error?.message).to.equal(undefined);
    expect(run.stdout).to.have.lengthOf(1);
    const record = JSON.parse(run.stdout[0]);
    expect(record.tokens).to.have.lengthOf.at.most(12);
    expect(record.prompt_tokens).to.deep.equal([1, 15, 16]);
    expect(record.settings).to.deep.include({ method: 'eagle2', tree: { depth: 3, topK: 2, tokens: 5 }, ep: 'cpu' });
    expect(record.stats).to.include.keys('tokensPerSecond', 'meanAcceptanceLength', 'targetForwards', 'draftForwards', 'milliseconds', 'bytesMoved', 'bytesPerToken');
    expect(record.stop_reason).to.be.oneOf(['stop-token', 'max-new-tokens']);
    const stats = run.stderr.join('');
    for (const word of ['tokens/s', 'τ', 'target', 'draft', 'verify', 'host', 'per token']) expect(stats).to.include(word);
  });

  it('--chat wraps the prompt in the Llama-3 template; stop ids include end-of-turn', async () => {
    const run = await generate(['--model', model, '--method', 'vanilla', '--chat', '--json', '--max-new-tokens', '4', 'hi']);
    expect(run.error, run.error?.message).to.equal(undefined);
    const { prompt_tokens: ids } = JSON.parse(run.stdout[0]);
    // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
    expect(ids.slice(0, 2)).to.deep.equal([1, 3]);
    expect(ids.slice(-3)).to.deep.equal([4, 6, 6]);
    expect(ids).to.include(5);
  });

  it('prompts from a file, from stdin; sampling with a seed is reproducible', async () => {
    const file = join(root, 'prompt.txt');
    writeFileSync(file, 'a tale');
    const fromFile = await generate(['--model', model, '--method', 'sps', '--prompt-file', file, '--temperature', '0.8', '--top-p', '0.9', '--seed', '3', '--json']);
    const fromStdin = await generate(['--model', model, '--method', 'sps', '--temperature', '0.8', '--top-p', '0.9', '--seed', '3', '--json'], 'a tale');
    expect(fromFile.error, fromFile.error?.message).to.equal(undefined);
    expect(JSON.parse(fromFile.stdout[0]).tokens).to.deep.equal(JSON.parse(fromStdin.stdout[0]).tokens);
  });

  describe('bad input: one-line errors', () => {
    it('an unknown method', async () => {
      expectUserError(await generate(['--model', model, '--method', 'medusa', 'hi']), /unknown method "medusa"; choose one of vanilla, sps, eagle2, fr-spec, ouroboros/);
    });

    it('no prompt, or two prompts', async () => {
      expectUserError(await generate(['--model', model]), /no prompt/);
      expectUserError(await generate(['--model', model, '--prompt', 'a', 'b']), /give the prompt once/);
    });

    it('a model folder without the graph a method needs, or missing a graph file', async () => {
      expectUserError(await generate(['--model', targetOnly, '--method', 'eagle2', 'hi']), /has no EAGLE head \(eagle\.onnx\), which --method eagle2 needs/);
      expectUserError(await generate(['--model', targetOnly, '--method', 'sps', 'hi']), /has no draft model \(draft\.onnx\), which --method sps needs/);
      const broken = join(root, 'broken');
      await runExportCli(['--target', join(root, 'set', 'target'), '--out', broken, '--dtype', 'fp32']);
      unlinkSync(join(broken, 'target.onnx'));
      expectUserError(await generate(['--model', broken, '--method', 'vanilla', 'hi']), /target\.onnx is missing/);
      expectUserError(await generate(['--model', join(root, 'nowhere'), '--method', 'vanilla', 'hi']), /model folder .*nowhere not found/);
    });

    it('a vocabulary map from another tokenizer', async () => {
      const llama3 = join(REPO_VOCAB_MAPS_DIR, 'llama3', 'freq_8192.json');
      expectUserError(await generate(['--model', model, '--vocab-map', llama3, 'hi']), /built for tokenizer llama3 \(128256 ids\), not for this model's tokenizer \(vocabulary of 32\)/);
      const stray = join(root, 'stray.json');
      writeFileSync(stray, JSON.stringify([3, 4, 40]));
      expectUserError(await generate(['--model', model, '--vocab-map', stray, 'hi']), /lists id 40, outside the model's vocabulary \(0\.\.31\)/);
      expectUserError(await generate(['--model', model, 'hi']), /vocab map size 32768 must be between 1 and the model's vocabulary of 32/);
      expectUserError(await generate(['--model', model, '--vocab-map', '8', 'hi']), /no freq_8\.json/);
      expectUserError(await generate(['--model', model, '--method', 'eagle2', '--vocab-map', '16', 'hi']), /--vocab-map applies to fr-spec, not to --method eagle2/);
    });

    it('a prompt longer than the context', async () => {
      expectUserError(await generate(['--model', model, '--method', 'vanilla', 'a'.repeat(9000)]), /the prompt has 9001 tokens but the model's context holds 8192/);
    });

    it('options for another method, and bad numbers', async () => {
      expectUserError(await generate(['--model', model, '--method', 'sps', '--tree-depth', '3', 'hi']), /--tree-depth applies to eagle2 and fr-spec/);
      const bad = await generate(['--model', model, '--temperature', '-1', 'hi']);
      expect(bad.error).to.be.instanceOf(CommanderError);
      expect(bad.stderr.join('')).to.match(/--temperature expects a number ≥ 0/);
    });

    it('without --model, the demo models must exist', async function () {
      if (existsSync(DEMO_MODEL_DIR)) this.skip();
      expectUserError(await generate(['Once upon a time']), /model folder models\/demo not found; pass --model/);
    });
  });
});
