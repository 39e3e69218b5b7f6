/**
 * onnxruntime session profiles: the parser on real trace files from a tiny CPU model, and
 * `fr-spec generate --profile` writing one trace per session and the stats.profile record.
 */
import { expect } from 'chai';
import { Command } from 'commander';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerGenerate } from '../../src/cli/generate.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { namedSessionOptions, sessionOptions } from '../../src/model/session.js';
import { parseProfile, profileSessionName, readProfile, type GenerationProfile, type SessionProfile } from '../../src/engine/profile.js';
import { writeModelSet } from './helpers/model-sets.js';
import { TINY_VOCAB_SIZE, tinyTokenizerFiles } from './helpers/tiny-tokenizer.js';

async function generate(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command();
  program.exitOverride().configureOutput({ writeErr: (s) => err.push(s), writeOut: (s) => out.push(s) });
  registerGenerate(program, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, readStdin: async () => undefined });
  await program.parseAsync(['generate', ...args], { from: 'user' });
  return { stdout: out.join(''), stderr: err.join('') };
}

function expectConsistent(p: Pick<SessionProfile, 'runMs' | 'kernelMs' | 'copyMs' | 'outsideKernelsMs' | 'executorMs'>): void {
  expect(p.runMs, 'model_run ≥ kernels').to.be.at.least(p.kernelMs + p.copyMs);
  expect(p.runMs, 'model_run ≥ executor').to.be.at.least(p.executorMs);
  expect(p.executorMs, 'executor ≥ kernels').to.be.at.least(p.kernelMs);
  expect(p.outsideKernelsMs).to.be.closeTo(p.runMs - p.kernelMs - p.copyMs, 1e-9);
}

describe('engine: onnxruntime session profiles', () => {
  let root: string;
  let model: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-profile-'));
    model = (await writeModelSet(join(root, 'set'), { vocabSize: TINY_VOCAB_SIZE, attention: 0.3, seed: 5, tokenizerFiles: tinyTokenizerFiles() })).dir;
    writeFileSync(join(root, 'freq_16.json'), JSON.stringify(Array.from({ length: 16 }, (_, i) => (i * 3 + 2) % TINY_VOCAB_SIZE)));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('parses a real trace: model_run per run, kernel time inside it, nothing from session creation', async () => {
    const dir = mkdtempSync(join(root, 'raw-'));
    const ort = loadOrt();
    const options = namedSessionOptions(sessionOptions('cpu', { threads: 1, profileDir: dir }), 'lm_head');
    const session = await ort.InferenceSession.create(join(model, 'lm_head.onnx'), options);
    const feeds = { hidden: new ort.Tensor('float32', new Float32Array(3 * 32).fill(0.5), [3, 32]), top_k: new ort.Tensor('int64', BigInt64Array.from([2n]), [1]) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const files = readdirSync(dir);
    expect(files).to.have.length(1);
    expect(profileSessionName(files[0]!)).to.equal('lm_head');
    const p = readProfile(join(dir, files[0]!));
    expect(p.session).to.equal('lm_head');
    expect(p.runs).to.equal(3);
    expect(p.kernelMs).to.be.above(0);
    expect(p.copyNodes, 'a CPU session has no Memcpy nodes').to.equal(0);
    expect(Object.keys(p.providers)).to.deep.equal(['CPUExecutionProvider']);
    expectConsistent(p);
  });

  it('counts Memcpy nodes as copies and fences as sync, and ignores nodes outside runs', () => {
    const p = parseProfile([
      { cat: 'Session', name: 'session_initialization', ts: 0, dur: 5000 },
      { cat: 'Node', name: 'init_kernel_time', ts: 10, dur: 100, args: { op_name: 'Gemm', provider: 'CPUExecutionProvider' } },
      { cat: 'Session', name: 'model_run', ts: 10_000, dur: 1000 },
      { cat: 'Session', name: 'SequentialExecutor::Execute', ts: 10_050, dur: 900 },
      { cat: 'Node', name: 'mm_kernel_time', ts: 10_100, dur: 300, args: { op_name: 'MatMul', provider: 'CUDAExecutionProvider' } },
      { cat: 'Node', name: 'mm_fence_before', ts: 10_090, dur: 10 },
      { cat: 'Node', name: 'Memcpy_token_0_kernel_time', ts: 10_500, dur: 200, args: { op_name: 'MemcpyToHost', provider: 'CUDAExecutionProvider' } },
    ], '/x/target_2026-01-01_00-00-00_123.json');
    expect(p).to.include({ session: 'target', runs: 1, runMs: 1, executorMs: 0.9, kernelMs: 0.3, copyMs: 0.2, copyNodes: 1, syncMs: 0.01 });
    expect(p.outsideKernelsMs).to.be.closeTo(0.5, 1e-12);
    expect(p.providers).to.deep.equal({ CUDAExecutionProvider: 0.5 });
  });

  it('does not count subgraph nodes inside a Loop node twice', () => {
    const p = parseProfile([
      { cat: 'Session', name: 'model_run', ts: 0, dur: 1000 },
      { cat: 'Node', name: 'loop_kernel_time', ts: 10, dur: 800, args: { op_name: 'Loop', provider: 'CPUExecutionProvider' } },
      { cat: 'Node', name: 'body_mm_kernel_time', ts: 20, dur: 300, args: { op_name: 'MatMul', provider: 'CPUExecutionProvider' } },
      { cat: 'Node', name: 'body_add_kernel_time', ts: 400, dur: 300, args: { op_name: 'Add', provider: 'CPUExecutionProvider' } },
      { cat: 'Node', name: 'out_kernel_time', ts: 850, dur: 50, args: { op_name: 'Cast', provider: 'CPUExecutionProvider' } },
    ]);
    expect(p.kernelMs).to.be.closeTo(0.85, 1e-12);
    expect(p.outsideKernelsMs).to.be.closeTo(0.15, 1e-12);
  });

  it('generate --profile writes one trace per session that ran and reports shares of wall time', async () => {
    const dir = join(root, 'prof');
    const { stdout, stderr } = await generate(['--model', model, '--ep', 'cpu', '--method', 'fr-spec', '--vocab-map', join(root, 'freq_16.json'), '--max-new-tokens', '12', '--tree-depth', '3', '--tree-topk', '2', '--tree-tokens', '5', '--profile', dir, '--json', 'hi']);
    const record = JSON.parse(stdout) as { stats: { milliseconds: { total: number }; profile: GenerationProfile } };
    const { profile } = record.stats;
    const files = readdirSync(dir);
    // target, eagle, the full-vocabulary head, the FR-Spec subset head (+ draft if exported): one file each.
    expect(files.length).to.be.at.least(3);
    expect(files.every((f) => f.endsWith('.json'))).to.equal(true);
    const names = profile.sessions.map((s) => s.session);
    expect(names).to.include.members(['target', 'eagle', 'fr_spec_head_16']);
    expect(profile.wallMs).to.equal(record.stats.milliseconds.total);
    for (const p of [...profile.sessions, profile.total]) {
      expectConsistent(p);
      for (const share of Object.values(p.share)) expect(share).to.be.within(0, 1);
    }
    expect(profile.total.runMs, 'session.run time fits in the wall time').to.be.at.most(profile.wallMs);
    expect(profile.total.share.run).to.be.above(0);
    expect(stderr).to.include('run time outside kernels (transfers, sync, ORT overhead)');
    expect(stderr).to.match(/total: \d+ runs/);
  });

  it('a second --profile run into the same folder reports only its own traces', async () => {
    const dir = join(root, 'prof2');
    const args = ['--model', model, '--ep', 'cpu', '--method', 'vanilla', '--max-new-tokens', '4', '--profile', dir, '--json', 'hi'];
    const first = JSON.parse((await generate(args)).stdout) as { stats: { profile: GenerationProfile } };
    const second = JSON.parse((await generate(args)).stdout) as { stats: { profile: GenerationProfile } };
    expect(second.stats.profile.total.runs).to.equal(first.stats.profile.total.runs);
    expect(second.stats.profile.sessions.map((s) => s.session)).to.deep.equal(['target']);
  });

  it('--engine fused: the Loop session is profiled too, its subgraph kernels counted once', async () => {
    const dir = join(root, 'prof-fused');
    const record = JSON.parse((await generate(['--model', model, '--ep', 'cpu', '--method', 'vanilla', '--engine', 'fused', '--max-new-tokens', '8', '--profile', dir, '--json', 'hi'])).stdout) as { stats: { profile: GenerationProfile } };
    const loop = record.stats.profile.sessions.find((s) => s.session === 'vanilla_loop');
    expect(loop, 'vanilla_loop profiled').to.not.equal(undefined);
    expectConsistent(loop!);
  });
});
