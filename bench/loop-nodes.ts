/**
 * How many nodes one step of the fused vanilla loop has, per operator type, with the target graph's own
 * attention and with GroupQueryAttention (--decode-attention gqa), one cycle of the eagle loop and, where
 * the folder has a draft model, one cycle of the sps loop. On a
 * GPU each node costs host time (launch and bookkeeping) whatever its size, which is what bounds a
 * decode step (docs/fused-loop.md).
 *
 *   node --import tsx bench/loop-nodes.ts MODEL_DIR [--run [--ep cpu|cuda] [--max-new-tokens 24]] [--tree 6/10/60] [--gamma 4] [--nodes PART]
 *
 * Without --run: the Loop bodies as built (ONNX nodes), and an eagle cycle's nodes by part (target verify,
 * EAGLE layer, draft head, draft glue, tree, …). With --run: also the nodes onnxruntime executes
 * per vanilla step and per eagle cycle after its own graph optimizations, from the profile of a short
 * generation (stop ids ignored), and the host time their kernels take: onnxruntime's profile times each
 * node's Compute() on the host, which on CUDA is the launch, not the GPU's work. On CUDA the sessions are
 * created with CPU fallback disabled (the partition adds no node to a body that runs wholly on the GPU).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHAIN_CHUNK } from '../src/engine/decoder.js';
import { FusedEagle } from '../src/engine/fused/fused-eagle.js';
import { FusedSps } from '../src/engine/fused/fused-sps.js';
import type { FusedEngine } from '../src/engine/fused/fused-run.js';
import { FusedVanilla } from '../src/engine/fused/fused-vanilla.js';
import { EngineModel } from '../src/engine/model.js';
import { buildEagleLoopModel } from '../src/model/fused/eagle-loop.js';
import { buildSpsLoopModel } from '../src/model/fused/sps-loop.js';
import { loopBodyOf } from '../src/model/fused/loop-ops.js';
import { DECODE_ATTENTIONS } from '../src/model/fused/gqa-decode.js';
import { buildVanillaLoopModel } from '../src/model/fused/vanilla-loop.js';
import { ModelFolder } from '../src/model/model-folder.js';
import { decodeModel, type ModelProto } from '../src/model/onnx/proto.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { run: { type: 'boolean', default: false }, tree: { type: 'string', default: '6/10/60' }, gamma: { type: 'string', default: '4' }, ep: { type: 'string', default: 'cpu' }, 'max-new-tokens': { type: 'string', default: '24' }, nodes: { type: 'string' } },
});
const usage = 'usage: loop-nodes.ts MODEL_DIR [--run [--ep cpu|cuda] [--max-new-tokens N]] [--tree D/K/T] [--gamma N] [--nodes PART]';
if (positionals.length !== 1) throw new Error(usage);
if (flags.ep !== 'cpu' && flags.ep !== 'cuda') throw new Error(`loop-nodes.ts: --ep must be cpu or cuda, not ${flags.ep}`);
const ep = flags.ep;
const maxNewTokens = Number(flags['max-new-tokens']);
const gamma = Number(flags.gamma);
if (!(Number.isInteger(gamma) && gamma >= 1)) throw new Error(`loop-nodes.ts: --gamma must be an integer ≥ 1, not ${flags.gamma}`);
if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 2)) throw new Error(`loop-nodes.ts: --max-new-tokens must be an integer ≥ 2, not ${flags['max-new-tokens']}`);
const dir = positionals[0];
const folder = ModelFolder.open(dir);
const { config } = folder;
const kvOf = (a: { num_layers: number; num_kv_heads: number; head_dim: number }) => ({ numLayers: a.num_layers, numKvHeads: a.num_kv_heads, headDim: a.head_dim, dtype: config.dtype });
const kv = kvOf(config.target.architecture);
const read = (file: string): ModelProto => decodeModel(readFileSync(folder.path(file)));
const target = read(config.target.file);
const attentions = DECODE_ATTENTIONS.filter((a) => a === 'graph' || config.ops === 'fused');

const tally = (keys: readonly string[]) => {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
};
const byOp = (ops: readonly string[]) => [...tally(ops)].sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
const report = (what: string, ops: readonly string[], per: string) =>
  process.stdout.write(`${what}: ${ops.length} nodes per ${per} (${(ops.length / kv.numLayers).toFixed(1)} per target layer); ${byOp(ops)}\n`);

/**
 * Which part of a speculative cycle a body node belongs to, from its name: the inlined graphs are prefixed
 * with their call (`@verify/…`, `@eagle_expand_2/…`, `@head_root/…`, `@draft_1/…`), the loop's own nodes
 * with their scope.
 */
const CYCLE_PARTS: readonly [RegExp, string][] = [
  [/^@verify\//, 'target verify'],
  [/^@eagle_/, 'EAGLE layer'],
  [/^@draft_/, 'draft model'],
  [/^@head_/, 'draft head'],
  [/^draft\//, 'draft glue'],
  [/^tree\//, 'tree'],
  [/^(verify|accept)\//, 'mask and accept'],
  [/^(catch_up|next)\//, 'catch-up and next'],
];
const partOf = (nodeName: string) => CYCLE_PARTS.find(([pattern]) => pattern.test(nodeName))?.[1] ?? 'commit and other';
const PART_ORDER = [...CYCLE_PARTS.map(([, part]) => part), 'commit and other'];
const reportParts = (what: string, nodeNames: readonly string[]) => {
  const counts = tally(nodeNames.map(partOf));
  const parts = PART_ORDER.filter((part) => counts.has(part)).map((part) => `${part} ${counts.get(part)}`);
  process.stdout.write(`${what}, by part: ${parts.join(', ')}\n`);
};
/** Host time of the body's kernels per iteration, per key (operator type or part): total ms, and µs per node. */
const reportTimes = (what: string, keyed: readonly { key: string; micros: number }[], iterations: number, order?: readonly string[]) => {
  const totals = new Map<string, { micros: number; nodes: number }>();
  for (const { key, micros } of keyed) {
    const total = totals.get(key) ?? { micros: 0, nodes: 0 };
    total.micros += micros;
    total.nodes += 1;
    totals.set(key, total);
  }
  const keys = order ? order.filter((key) => totals.has(key)) : [...totals.keys()].sort((a, b) => totals.get(b)!.micros - totals.get(a)!.micros);
  const all = keyed.reduce((sum, { micros }) => sum + micros, 0);
  const parts = keys.map((key) => {
    const { micros, nodes } = totals.get(key)!;
    return `${key} ${(micros / iterations / 1000).toFixed(2)} ms (${(micros / nodes).toFixed(1)} µs/node)`;
  });
  process.stdout.write(`${what}: kernels' host time ${(all / iterations / 1000).toFixed(2)} ms per iteration; ${parts.join(', ')}\n`);
};

process.stdout.write(`${dir}: ${kv.numLayers} target layers, ${config.ops ?? 'standard'} operators, ${config.dtype}\n`);
const [depth, topK, tokens] = flags.tree.split('/').map(Number);
const tree = { depth, topK, tokens };
// Each decode attention with the caches at their exact length, and the default one with reserved rows (--reserve-rows).
const vanillaLoops = [...attentions.map((attention) => ({ attention, reserveRows: false })), { attention: 'graph' as const, reserveRows: true }].map((variant) => ({
  ...variant,
  label: `vanilla_loop, attention ${variant.attention}${variant.reserveRows ? ', rows reserved' : ''}`,
  loop: buildVanillaLoopModel(target, kv, { ...variant, maxPositions: 4096, vocabSize: config.vocab_size }),
}));
for (const { label, loop } of vanillaLoops) report(`${label}, as built`, loopBodyOf(loop).node.map((n) => n.op_type), 'step');
const eagleLoop = config.eagle && buildEagleLoopModel({ target, eagle: read(config.eagle.file), head: read(config.lm_head.file), targetKv: kv, eagleKv: kvOf(config.eagle.architecture), hiddenSize: config.hidden_size, tree, contextLength: 4096, vocabSize: config.vocab_size, headVocabSize: config.lm_head.vocab_size });
if (eagleLoop) {
  report(`eagle_loop, tree ${flags.tree}, as built`, loopBodyOf(eagleLoop).node.map((n) => n.op_type), 'cycle');
  reportParts(`eagle_loop, tree ${flags.tree}, as built`, loopBodyOf(eagleLoop).node.map((n) => n.name ?? ''));
  // --nodes PART: every body node of that part of the cycle (e.g. "draft glue"), in graph order.
  if (flags.nodes !== undefined) {
    for (const node of loopBodyOf(eagleLoop).node.filter((n) => partOf(n.name ?? '') === flags.nodes)) process.stdout.write(`  ${node.op_type.padEnd(22)} ${node.name}\n`);
  }
}
const spsLoop = config.draft && buildSpsLoopModel({ target, draft: read(config.draft.file), targetKv: kv, draftKv: kvOf(config.draft.architecture), gamma, maxPending: CHAIN_CHUNK, contextLength: 4096, vocabSize: config.vocab_size, draftVocabSize: config.draft.architecture.vocab_size });
if (spsLoop) {
  report(`sps_loop, γ ${gamma}, as built`, loopBodyOf(spsLoop).node.map((n) => n.op_type), 'cycle');
  reportParts(`sps_loop, γ ${gamma}, as built`, loopBodyOf(spsLoop).node.map((n) => n.name ?? ''));
}

if (flags.run) {
  const model = await EngineModel.open(dir, { ep });
  const strictDevice = ep === 'cuda';
  try {
    for (const { attention, reserveRows, label, loop } of vanillaLoops) {
      if (attention === 'gqa' && ep === 'cuda' && config.dtype !== 'float16') {
        process.stdout.write(`${label}: not run (onnxruntime's CUDA GroupQueryAttention has no ${config.dtype} kernel)\n`);
        continue;
      }
      await profileLoop(label, 'step', loop, (profileDir) => FusedVanilla.create(model, { profileDir, attention, reserveRows, strictDevice }));
    }
    if (eagleLoop) await profileLoop(`eagle_loop, tree ${flags.tree}`, 'cycle', eagleLoop, (profileDir) => FusedEagle.create(model, { tree, profileDir, strictDevice }));
    if (spsLoop) await profileLoop(`sps_loop, γ ${gamma}`, 'cycle', spsLoop, (profileDir) => FusedSps.create(model, { gamma, profileDir, strictDevice }));
  } finally {
    await model.release();
  }
}

/**
 * Node kernels onnxruntime ran per iteration of a fused loop, from the profile of a short generation:
 * the body runs whole each iteration; the outer graph's nodes (`loop`'s, run once) are left out.
 */
async function profileLoop(what: string, per: 'step' | 'cycle', loop: ModelProto, create: (profileDir: string) => Promise<FusedEngine>): Promise<void> {
  const profileDir = mkdtempSync(join(tmpdir(), 'fr-spec-loop-nodes-'));
  let fused: FusedEngine | undefined;
  let result: Awaited<ReturnType<FusedEngine['generate']>>;
  try {
    fused = await create(profileDir);
    result = await fused.generate([1, 2, 3, 4, 5, 6, 7, 8], { maxNewTokens });
  } catch (error) {
    // One loop that onnxruntime cannot run (GroupQueryAttention on CUDA, 2026-12-06) does not hide the others.
    process.stdout.write(`${what}: FAILED: ${(error as Error).message.split('\n')[0]}\n`);
    await fused?.release();
    rmSync(profileDir, { recursive: true, force: true });
    return;
  }
  try {
    await fused.endProfiling();
    const outer = new Set(loop.graph.node.map((n) => `${n.name}_kernel_time`));
    const nodeEvents = readdirSync(profileDir)
      .filter((file) => file.startsWith(loop.graph.name))
      .flatMap((file) => JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as { cat?: string; name: string; dur?: number; args?: { op_name?: string } }[])
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    const body = nodeEvents.filter((e) => !outer.has(e.name));
    const loopMicros = nodeEvents.filter((e) => e.args?.op_name === 'Loop' && outer.has(e.name)).reduce((sum, e) => sum + (e.dur ?? 0), 0);
    // Each body node runs once per iteration (step or cycle).
    const runs = new Map<string, number>();
    for (const e of body) runs.set(e.name, (runs.get(e.name) ?? 0) + 1);
    const iterations = new Set(runs.values());
    if (iterations.size !== 1) throw new Error(`${what}: body nodes ran different numbers of times (${[...iterations].join(', ')})`);
    const count = [...iterations][0]!;
    process.stdout.write(`${what}: ${result.tokens.length} tokens, ${count} iterations profiled, the Loop node ${(loopMicros / count / 1000).toFixed(2)} ms per iteration (with profiling)\n`);
    const opOf = new Map(body.map((e) => [e.name, e.args!.op_name!]));
    const label = `${what}, run by onnxruntime (${ep.toUpperCase()})`;
    report(label, [...runs.keys()].map((name) => opOf.get(name)!), per);
    const nodeName = (event: string) => event.replace(/_kernel_time$/, '');
    if (per === 'cycle') reportParts(label, [...runs.keys()].map(nodeName));
    reportTimes(`${label}, by operator`, body.map((e) => ({ key: opOf.get(e.name)!, micros: e.dur ?? 0 })), count);
    if (per === 'cycle') reportTimes(`${label}, by part`, body.map((e) => ({ key: partOf(nodeName(e.name)), micros: e.dur ?? 0 })), count, PART_ORDER);
    // The slowest single nodes: one node far above its kind's average (the first attention of a vanilla step on CUDA,
    // 2.7 ms against ≈ 0.03 ms for the others, docs/fused-loop.md) hides in the averages above.
    const perNode = new Map<string, number>();
    for (const e of body) perNode.set(e.name, (perNode.get(e.name) ?? 0) + (e.dur ?? 0));
    const slowest = [...perNode].sort((x, y) => y[1] - x[1]).slice(0, 5);
    process.stdout.write(`${label}, slowest nodes: ${slowest.map(([name, micros]) => `${nodeName(name)} (${opOf.get(name)}) ${(micros / count).toFixed(0)} µs`).join(', ')}\n`);
  } finally {
    await fused.release();
    rmSync(profileDir, { recursive: true, force: true });
  }
}
