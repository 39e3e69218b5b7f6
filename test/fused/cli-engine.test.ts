/** fr-spec generate --engine auto|fused|host: same text and tokens, --stats bytes per token, and its errors. */
import { expect } from 'chai';
import { Command } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerGenerate } from '../../src/cli/generate.js';
import { UserError } from '../../src/util/errors.js';
import { reservesRowsByDefault } from '../../src/engine/engine.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';
import { TINY_VOCAB_SIZE, tinyTokenizerFiles } from '../engine/helpers/tiny-tokenizer.js';

interface CliRun {
  stdout: string[];
  stderr: string[];
  error?: Error;
}

async function generate(args: string[]): Promise<CliRun> {
  const run: CliRun = { stdout: [], stderr: [] };
  const program = new Command();
  program.exitOverride().configureOutput({ writeErr: (s) => run.stderr.push(s), writeOut: (s) => run.stdout.push(s) });
  registerGenerate(program, { stdout: { write: (s: string) => run.stdout.push(s) }, stderr: { write: (s: string) => run.stderr.push(s) }, readStdin: async () => undefined });
  try {
    await program.parseAsync(['generate', ...args], { from: 'user' });
  } catch (error) {
    run.error = error as Error;
  }
  return run;
}

describe('cli: fr-spec generate --engine', () => {
  let root: string;
  let model: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-fused-cli-'));
    model = (await writeModelSet(join(root, 'set'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 21, tokenizerFiles: tinyTokenizerFiles() })).dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const base = (method = 'vanilla') => ['--model', model, '--method', method, '--ep', 'cpu', '--max-new-tokens', '24', '--prompt', 'hello world'];

  it('fused and host give the same tokens and text; --stats reports bytes per token for both', async () => {
    const host = await generate([...base(), '--json']);
    const fused = await generate([...base(), '--json', '--engine', 'fused']);
    const chunked = await generate([...base(), '--json', '--engine', 'fused', '--chunk', '5']);
    for (const run of [host, fused, chunked]) expect(run.error).to.equal(undefined);
    const [h, f, c] = [host, fused, chunked].map((run) => JSON.parse(run.stdout.join('')) as { text: string; tokens: number[]; settings: Record<string, unknown>; stats: { bytesPerToken: number } });
    expect(f.tokens).to.deep.equal(h.tokens);
    expect(c.tokens).to.deep.equal(h.tokens);
    expect(f.text).to.equal(h.text);
    // auto is host on the CPU
    expect(h.settings).to.include({ engine: 'host' });
    expect(f.settings).to.include({ engine: 'fused' });
    expect(c.settings).to.include({ engine: 'fused', chunk: 5 });
    expect(f.stats.bytesPerToken).to.be.below(h.stats.bytesPerToken);

    const streamed = await generate([...base(), '--engine', 'fused', '--stats']);
    expect(streamed.stdout.join('')).to.equal(`${h.text}\n`);
    expect(streamed.stderr.join('')).to.match(/per token\)/);
  });

  for (const method of ['eagle2', 'fr-spec', 'sps']) {
    it(`${method}: fused and host give the same tokens and text`, async () => {
      const mapFile = join(root, 'freq_half.json');
      writeFileSync(mapFile, JSON.stringify(Array.from({ length: Math.floor(TINY_VOCAB_SIZE / 2) }, (_, i) => 2 * i)));
      const args = [...base(method), '--json', ...(method === 'fr-spec' ? ['--vocab-map', mapFile] : [])];
      const host = await generate([...args, '--engine', 'host']);
      const fused = await generate([...args, '--engine', 'fused', '--chunk', '7']);
      for (const run of [host, fused]) expect(run.error).to.equal(undefined);
      const [h, f] = [host, fused].map((run) => JSON.parse(run.stdout.join('')) as { text: string; tokens: number[]; settings: Record<string, unknown> });
      expect(f.tokens).to.deep.equal(h.tokens);
      expect(f.text).to.equal(h.text);
      expect(f.settings).to.include({ engine: 'fused', chunk: 7 });
      // Sampling (top-p 1) runs in the loop too, reproducibly for a seed.
      const sampled = await Promise.all([1, 2].map(() => generate([...args, '--engine', 'fused', '--temperature', '0.8', '--seed', '3'])));
      const [s1, s2] = sampled.map((run) => JSON.parse(run.stdout.join('')) as { tokens: number[]; settings: Record<string, unknown> });
      expect(s1.settings).to.include({ engine: 'fused', temperature: 0.8 });
      expect(s2.tokens).to.deep.equal(s1.tokens);
    });
  }

  it('--decode-attention gqa: host and fused engines decode the same tokens on a fused-operator model; refused elsewhere', async () => {
    const fusedOps = (await writeModelSet(join(root, 'fused-ops'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 21, tokenizerFiles: tinyTokenizerFiles(), ops: 'fused', hiddenSize: 64 })).dir;
    const args = ['--model', fusedOps, '--method', 'vanilla', '--ep', 'cpu', '--max-new-tokens', '24', '--prompt', 'hello world', '--json', '--decode-attention', 'gqa'];
    const host = await generate([...args, '--engine', 'host']);
    const gqa = await generate([...args, '--engine', 'fused']);
    for (const run of [host, gqa]) expect(run.error).to.equal(undefined);
    const [h, g] = [host, gqa].map((run) => JSON.parse(run.stdout.join('')) as { tokens: number[]; settings: Record<string, unknown> });
    expect(g.tokens).to.deep.equal(h.tokens);
    expect(h.settings).to.include({ engine: 'host', decode_attention: 'gqa' });
    expect(g.settings).to.include({ engine: 'fused', decode_attention: 'gqa' });
    const errors = [
      await generate([...base(), '--engine', 'fused', '--decode-attention', 'gqa']),
      await generate([...base('eagle2'), '--model', fusedOps, '--decode-attention', 'gqa']),
      await generate([...args.slice(0, -1), 'flash']),
    ];
    expect(errors[0].error).to.be.instanceOf(UserError);
    expect(errors[0].error!.message).to.match(/needs a model exported with --ops fused/);
    expect(errors[1].error).to.be.instanceOf(UserError);
    expect(errors[1].error!.message).to.match(/applies to --method vanilla/);
    expect(errors[2].error!.message).to.match(/--decode-attention.*flash.*graph, gqa/s);
  });

  it('--reserve-rows: vanilla with the caches padded once, the same tokens on both engines (whole run and chunks); refused elsewhere', async () => {
    const args = [...base(), '--json', '--max-new-tokens', '30'];
    const host = await generate([...args, '--engine', 'host', '--reserve-rows']);
    const runs = [await generate([...args, '--engine', 'fused', '--reserve-rows']), await generate([...args, '--engine', 'fused', '--reserve-rows', '--chunk', '7'])];
    for (const run of [host, ...runs]) expect(run.error).to.equal(undefined);
    const [h, ...reserved] = [host, ...runs].map((run) => JSON.parse(run.stdout.join('')) as { tokens: number[]; settings: Record<string, unknown> });
    for (const r of reserved) {
      expect(r.tokens).to.deep.equal(h.tokens);
      expect(r.settings).to.include({ engine: 'fused', reserve_rows: true });
    }
    expect(h.settings).to.include({ engine: 'host', reserve_rows: true });
    const plain = JSON.parse((await generate([...args, '--engine', 'host'])).stdout.join('')) as { tokens: number[]; settings: Record<string, unknown> };
    expect(plain.tokens).to.deep.equal(h.tokens); // the CPU rounds alike over the padded rows
    expect(plain.settings).to.not.have.property('reserve_rows');
    const optedOut = JSON.parse((await generate([...args, '--engine', 'fused', '--no-reserve-rows'])).stdout.join('')) as { tokens: number[]; settings: Record<string, unknown> };
    expect(optedOut.tokens).to.deep.equal(h.tokens);
    expect(optedOut.settings).to.not.have.property('reserve_rows');
    const errors = [await generate([...base('eagle2'), '--engine', 'fused', '--reserve-rows'])];
    expect(errors[0].error).to.be.instanceOf(UserError);
    expect(errors[0].error!.message).to.match(/--reserve-rows applies to --method vanilla, not eagle2/);
  });

  it('reserves cache rows by default on CUDA with the graph\'s attention only (where the first attention of a step is slow)', () => {
    expect(reservesRowsByDefault('cuda', 'graph')).to.equal(true);
    expect(reservesRowsByDefault('cuda', 'gqa')).to.equal(false);
    expect(reservesRowsByDefault('cpu', 'graph')).to.equal(false);
    expect(reservesRowsByDefault('cpu', 'gqa')).to.equal(false);
  });

  it('refuses fused with another method, or --chunk with the host engine', async () => {
    const errors = [
      await generate([...base('ouroboros'), '--engine', 'fused']),
      await generate([...base(), '--engine', 'host', '--chunk', '4']),
    ];
    for (const [i, pattern] of [/runs vanilla, eagle2, fr-spec, sps, not ouroboros/, /--chunk applies to the fused engine/].entries()) {
      expect(errors[i].error, String(pattern)).to.be.instanceOf(UserError);
      expect(errors[i].error!.message).to.match(pattern);
    }
  });
});
