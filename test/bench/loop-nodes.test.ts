/**
 * bench/loop-nodes.ts on a tiny fused-operator model set: the node counts it prints per fused-loop
 * iteration, as built and as onnxruntime runs them (CPU profile), agree with the Loop bodies themselves.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loopBodyOf } from '../../src/model/fused/loop-ops.js';
import { buildVanillaLoopModel } from '../../src/model/fused/vanilla-loop.js';
import { decodeModel } from '../../src/model/onnx/proto.js';
import { writeModelSet } from '../engine/helpers/model-sets.js';

describe('bench/loop-nodes.ts', function () {
  this.timeout(180_000);
  let root: string;
  let dir: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-loop-nodes-'));
    dir = (await writeModelSet(join(root, 'set'), { vocabSize: 32, attention: 0.5, seed: 3, ops: 'fused', hiddenSize: 64 })).dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints each loop\'s nodes per iteration, built and run, for both decode attentions', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', resolve('bench/loop-nodes.ts'), dir, '--run', '--tree', '3/3/8'], { encoding: 'utf8', timeout: 170_000 });
    expect(run.status, run.stderr).to.equal(0);
    const count = (label: string) => {
      const line = run.stdout.split('\n').find((l) => l.startsWith(`${label}: `));
      expect(line, `${label} in\n${run.stdout}`).to.not.equal(undefined);
      return Number(/: (\d+) nodes per/.exec(line!)![1]);
    };
    const target = decodeModel(readFileSync(join(dir, 'target.onnx')));
    const kv = { numLayers: 2, numKvHeads: 2, headDim: 16, dtype: 'float32' } as const;
    const body = (attention: 'graph' | 'gqa') => loopBodyOf(buildVanillaLoopModel(target, kv, { attention, maxPositions: 64, vocabSize: 32 })).node.length;
    expect(count('vanilla_loop, attention graph, as built')).to.equal(body('graph'));
    expect(count('vanilla_loop, attention gqa, as built')).to.equal(body('gqa'));
    // onnxruntime runs at most what was built (its optimizations remove or fuse nodes), and GroupQueryAttention fewer.
    const ran = (label: string) => count(`${label}, run by onnxruntime (CPU)`);
    expect(ran('vanilla_loop, attention graph')).to.be.within(1, body('graph'));
    expect(ran('vanilla_loop, attention gqa')).to.be.below(ran('vanilla_loop, attention graph'));
    expect(ran('eagle_loop, tree 3/3/8')).to.be.within(1, count('eagle_loop, tree 3/3/8, as built'));
    // An eagle cycle by part: every node in exactly one part, the target's verify forward among them.
    for (const label of ['eagle_loop, tree 3/3/8, as built', 'eagle_loop, tree 3/3/8, run by onnxruntime (CPU)']) {
      const line = run.stdout.split('\n').find((l) => l.startsWith(`${label}, by part: `));
      expect(line, `${label} by part in\n${run.stdout}`).to.not.equal(undefined);
      const parts = new Map(line!.slice(line!.indexOf('by part: ') + 'by part: '.length).split(', ').map((entry) => [entry.replace(/ \d+$/, ''), Number(/(\d+)$/.exec(entry)![1])]));
      expect([...parts.values()].reduce((a, b) => a + b, 0), line).to.equal(count(label));
      for (const part of ['target verify', 'EAGLE layer', 'draft head', 'draft glue']) expect(parts.get(part), `${part} in ${line}`).to.be.above(0);
    }
  });
});
