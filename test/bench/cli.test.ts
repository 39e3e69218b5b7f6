import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { registerBench, type BenchCliDependencies } from '../../src/cli/bench.js';
import { UserError } from '../../src/util/errors.js';
import { FakeBackend } from './helpers/fake-backend.js';
import { makeTempDir, writeJsonl, writeModelFolder } from './helpers/model-folder.js';

interface CliRun {
  stdout: string;
  stderr: string;
  error?: Error;
  backends: FakeBackend[];
}

async function runCli(args: string[], overrides: Partial<BenchCliDependencies> = {}): Promise<CliRun> {
  const result: CliRun = { stdout: '', stderr: '', backends: [] };
  const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (result.stdout += s), writeErr: (s) => (result.stderr += s) });
  registerBench(program, {
    openBackend: async () => {
      const backend = new FakeBackend();
      result.backends.push(backend);
      return backend;
    },
    stdout: { write: (s: string) => (result.stdout += s) },
    stderr: { write: (s: string) => (result.stderr += s) },
    showProgress: false,
    resolveDevice: (ep) => (ep === 'auto' ? 'cpu' : ep),
    now: () => new Date('2026-01-02T03:04:05Z'),
    ...overrides,
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    result.error = error as Error;
  }
  return result;
}

describe('fr-spec bench (CLI)', function () {
  let tmp: string;
  let model: string;
  let data: string;
  let cwd: string;

  beforeEach(() => {
    tmp = makeTempDir();
    model = writeModelFolder(path.join(tmp, 'model'));
    data = writeJsonl(path.join(tmp, 'spec.jsonl'), [
      { question_id: 81, category: 'writing', turns: ['Write a limerick.', 'Make it rhyme better.'] },
      { question_id: 161, category: 'translation', turns: ['Translate German to English: Guten Morgen'] },
      { question_id: 321, category: 'qa', turns: ['What is the tallest mountain?'] },
    ]);
    cwd = process.cwd();
    process.chdir(tmp);
  });
  afterEach(() => {
    process.chdir(cwd);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs a Spec-Bench file and prints the tables; the folder holds every output', async function () {
    const run = await runCli(['bench', '--model', model, '--dataset', 'spec-bench', '--data', data, '--methods', 'vanilla,eagle2,fr-spec:16', '--warmup', '1', '--out', 'out']);
    expect(run.error).to.equal(undefined);
    expect(run.stdout).to.match(/^tiny-target on spec-bench, cpu, host engine \(greedy, max 1024 new tokens, chat template, 1 run\(s\), 1 warm-up\)/);
    expect(run.stdout).to.match(/method\s+category\s+questions\s+new tokens\s+tokens\/s\s+τ\s+vs vanilla\s+vs eagle2\s+equals vanilla/);
    expect(run.stdout).to.match(/fr-spec:16\s+mt_bench\s+1\s/);
    expect(run.stdout).to.match(/speedup over vanilla \(τ\):\nmethod\s+mt_bench\s+translation\s+qa\s+all/);
    expect(run.stderr).to.equal('measured 9 (method, question, run) pair(s); wrote out/ (results.md, results.csv, results.json, speedup.svg)\n');
    expect(fs.readdirSync(path.join(tmp, 'out')).sort()).to.deep.equal(['bench.json', 'results.csv', 'results.json', 'results.jsonl', 'results.md', 'speedup.svg']);
    expect(run.backends[0].calls[0].options.maxNewTokens).to.equal(1024);
  });

  it('re-renders one saved folder and compares several with bench report', async function () {
    await runCli(['bench', '--model', model, '--dataset', data, '--methods', 'vanilla,eagle2', '--warmup', '0', '--out', 'a']);
    await runCli(['bench', '--model', model, '--dataset', data, '--methods', 'vanilla,eagle2', '--warmup', '0', '--out', 'b', '--max-new-tokens', '8']);
    fs.rmSync(path.join(tmp, 'a', 'results.md'));
    const one = await runCli(['bench', 'report', 'a']);
    expect(one.error).to.equal(undefined);
    expect(one.stdout).to.match(/^tiny-target on spec, cpu/);
    expect(fs.existsSync(path.join(tmp, 'a', 'results.md'))).to.equal(true);
    const both = await runCli(['bench', 'report', 'a', 'b', '--markdown', 'compare.md']);
    expect(both.error).to.equal(undefined);
    expect(both.stdout).to.match(/^a: tiny-target on spec, cpu, host engine \(greedy, max 1024 new tokens.*\nb: .*max 8 new tokens.*\nnote: the folders used different generation settings\n\nmethod\s+category\s+tok\/s a\s+τ a\s+speedup a\s+tok\/s b/);
    expect(fs.readFileSync(path.join(tmp, 'compare.md'), 'utf8')).to.match(/^# fr-spec bench comparison\n\n- a: .*\n- b: .*\n- note: .*\n\n\| method \| category \| tok\/s a \|/);
    const missing = await runCli(['bench', 'report', 'nowhere']);
    expect(missing.error).to.be.instanceOf(UserError);
    expect(missing.error!.message).to.equal('nowhere: not a bench output folder (no bench.json)');
  });

  it('resumes into the same --out and says how much was there', async function () {
    const args = ['bench', '--model', model, '--dataset', data, '--methods', 'vanilla', '--warmup', '0', '--out', 'r'];
    await runCli(args);
    const again = await runCli(args);
    expect(again.backends).to.have.length(0);
    expect(again.stderr).to.equal('measured 0 (method, question, run) pair(s); 3 already there; wrote r/ (results.md, results.csv, results.json, speedup.svg)\n');
  });

  it('names a fresh output folder under bench-results/ when --out is not given', async function () {
    const run = await runCli(['bench', '--model', model, '--dataset', data, '--methods', 'vanilla', '--warmup', '0', '--quiet']);
    expect(run.error).to.equal(undefined);
    expect(run.stderr).to.equal('');
    expect(fs.readdirSync(path.join(tmp, 'bench-results'))).to.deep.equal(['model-spec-20260102-030405']);
  });

  it('runs the demo models over the project\'s prompts on the CPU without arguments', async function () {
    const demo = writeModelFolder(path.join(tmp, 'demo'), { draft: false, vocabSizes: [8] });
    const devices: string[] = [];
    const run = await runCli(['bench', '--out', 'demo-out'], { demoModelDir: demo, resolveDevice: (ep) => (devices.push(ep), ep) });
    expect(run.error).to.equal(undefined);
    expect(devices).to.deep.equal(['cpu']);
    const [backend] = run.backends;
    expect(backend.created).to.deep.equal(['vanilla', 'eagle2', 'fr-spec:8']);
    // One warm-up per method, then 16 prompts (3 with two turns) per method.
    expect(backend.calls).to.have.length(3 + 3 * 19);
    expect(backend.calls.every((c) => c.options.maxNewTokens === 64)).to.equal(true);
    expect(run.stdout).to.match(/method\s+writing\s+qa\s+code\s+math\s+all/);
  });

  it('says the demo models are missing until they exist', async function () {
    const run = await runCli(['bench'], { demoModelDir: path.join(tmp, 'models', 'demo') });
    expect(run.error).to.be.instanceOf(UserError);
    expect(run.error!.message).to.equal('the demo models are not there yet (models/demo): they come from the recipe in training/; pass --model <dir>, a folder made by fr-spec export');
  });

  it('rejects bad input with one clear line', async function () {
    const odd = writeJsonl(path.join(tmp, 'odd.jsonl'), [{ text: 'hello' }]);
    const base = ['bench', '--model', model, '--out', 'x'];
    const cases: [string[], RegExp][] = [
      [[...base, '--dataset', data, '--methods', 'vanilla,medusa'], /^unknown method "medusa"; known methods: vanilla, eagle2, fr-spec:<size>, sps, ouroboros$/],
      [[...base, '--dataset', odd], /odd\.jsonl: unknown dataset format \(line 1 has the fields text\)/],
      [[...base, '--dataset', data, '--methods', 'fr-spec:4096'], /^fr-spec:4096: no vocab map freq_4096\.json in .* \(it has 8, 16\)/],
      [[...base, '--dataset', 'gsm8k'], /^--dataset gsm8k needs --data <path>/],
      [[...base, '--dataset', data, '--prompt-style', 'plain', '--system', 'x'], /^--system applies to chat prompts/],
      [['bench', '--model', path.join(tmp, 'nothing'), '--dataset', data], /nothing: not a model folder \(no config\.json\)/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli(args);
      expect(run.error, args.join(' ')).to.be.instanceOf(UserError);
      expect(run.error!.message).to.match(pattern);
      expect(run.backends).to.have.length(0);
    }
    fs.mkdirSync(path.join(tmp, 'other'));
    const other = writeModelFolder(path.join(tmp, 'other'), { source: 'something-else' });
    await runCli(['bench', '--model', model, '--dataset', data, '--methods', 'vanilla', '--warmup', '0', '--out', 'shared']);
    const mixed = await runCli(['bench', '--model', other, '--dataset', data, '--methods', 'vanilla', '--warmup', '0', '--out', 'shared']);
    expect(mixed.error!.message).to.match(/^shared holds results of another model/);
  });

  it('checks option values', async function () {
    for (const [option, value, message] of [
      ['--temperature', '-1', '--temperature expects a number ≥ 0, got "-1"'],
      ['--runs', '0', '--runs expects a whole number ≥ 1, got "0"'],
      ['--warmup', '1.5', '--warmup expects a whole number ≥ 0, got "1.5"'],
    ]) {
      const run = await runCli(['bench', option, value]);
      expect(run.error).to.be.instanceOf(CommanderError);
      expect(run.stderr).to.include(message);
    }
  });
});
