/**
 * bench/gpu/run.sh's steps that need no GPU: the usage message, refusal of unknown steps, and the
 * `vocab` step (fr-spec build-vocab over the corpus folder's train shards, checked on the validation
 * shards), on the repository's embedded sample corpus.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SCRIPT = resolve('bench/gpu/run.sh');

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
}

describe('bench/gpu/run.sh (steps without a GPU)', function () {
  this.timeout(180_000);
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-gpu-script-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints its usage without arguments and refuses an unknown step', () => {
    const usage = run([]);
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.match(/bench\/gpu\/run.sh RUN \[STEP\.\.\.\]/);
    const unknown = run([join(root, 'run-a'), 'fly']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/unknown step fly/);
  });

  it('refuses an unknown OPS, and the roofline step before the big-model step', () => {
    const ops = run([join(root, 'run-c'), 'engines'], { OPS: 'bogus' });
    expect(ops.status).to.equal(2);
    expect(ops.stderr).to.match(/OPS must be standard or fused, not bogus/);
    const roofline = run([join(root, 'run-c'), 'roofline']);
    expect(roofline.status).to.equal(2);
    expect(roofline.stderr).to.match(/no .*big-llama3-8b\/model-fused \(run the big-model step with BIG_OPS=fused\)/);
  });

  it('big-model: random weights of a real shape (here the bench target\'s), exported with fused ops, checkpoints removed', () => {
    const runDir = join(root, 'run-d');
    const result = run([runDir, 'big-model'], { BIG_SHAPE: 'bench' });
    expect(result.status, result.stderr).to.equal(0);
    const folder = join(runDir, 'big-bench', 'model-fused');
    expect(existsSync(join(runDir, 'big-bench', 'model-standard'))).to.equal(false);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as { ops: string; target: { architecture: { num_layers: number; hidden_size: number } }; eagle: unknown; vocab_maps: string[] };
    expect(config.ops).to.equal('fused');
    expect(config.target.architecture).to.include({ num_layers: 12, hidden_size: 1024 });
    expect(config.eagle).to.not.equal(undefined);
    expect(config.vocab_maps).to.include('vocab-maps/freq_32768.json');
    expect(existsSync(join(runDir, 'big-bench', 'target'))).to.equal(false);
    expect(readFileSync(join(runDir, 'results', 'commands.txt'), 'utf8')).to.match(/random-model\.ts .* --shape bench --tokenizer .*\n.*fr-spec export .*--ops fused/);
  });

  it('vocab: builds the FR-Spec subsets over the train shards, logging the command', () => {
    const corpus = join(root, 'corpus');
    const runDir = join(root, 'run-b');
    mkdirSync(corpus);
    copyFileSync('corpora/sample.jsonl.gz', join(corpus, 'train-00000.jsonl.gz'));
    const result = run([runDir, 'vocab'], { CORPUS: corpus });
    expect(result.status, result.stderr).to.equal(0);
    for (const size of [8192, 16384, 32768, 65536]) {
      const ids = JSON.parse(readFileSync(join(runDir, 'vocab-maps', `freq_${size}.json`), 'utf8')) as number[];
      expect(ids).to.have.lengthOf(size);
    }
    expect(existsSync(join(runDir, 'vocab-maps', 'manifest.json'))).to.equal(true);
    expect(readFileSync(join(runDir, 'results', 'commands.txt'), 'utf8')).to.match(/bin\/fr-spec build-vocab --tokenizer llama3 --corpus .*train-00000\.jsonl\.gz/);
  });

  it('vocab: says clearly when the corpus folder has no train shards', () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const result = run([join(root, 'run-c'), 'vocab'], { CORPUS: empty });
    expect(result.status).to.equal(2);
    expect(result.stderr).to.match(/no \.jsonl\/\.gz\/\.zst train shards in .*empty/);
  });
});
