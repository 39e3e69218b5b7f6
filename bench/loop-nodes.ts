/**
 * How many nodes one step of the fused vanilla loop runs, per operator type, with the target graph's own
 * attention and with GroupQueryAttention (--loop-attention gqa). On a GPU each node costs host time
 * (launch and bookkeeping) whatever its size, which is what bounds a decode step (docs/fused-loop.md).
 *
 *   node --import tsx bench/loop-nodes.ts MODEL_DIR [--max-positions N]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LOOP_ATTENTIONS } from '../src/model/fused/gqa-decode.js';
import { buildVanillaLoopModel } from '../src/model/fused/vanilla-loop.js';
import { ModelFolder } from '../src/model/model-folder.js';
import { decodeModel } from '../src/model/onnx/proto.js';

const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { 'max-positions': { type: 'string', default: '4096' } } });
if (positionals.length !== 1) throw new Error('usage: loop-nodes.ts MODEL_DIR [--max-positions N]');
const folder = ModelFolder.open(positionals[0]);
const { architecture } = folder.config.target;
const kv = { numLayers: architecture.num_layers, numKvHeads: architecture.num_kv_heads, headDim: architecture.head_dim, dtype: folder.config.dtype };
const target = decodeModel(readFileSync(folder.path(folder.config.target.file)));
process.stdout.write(`${positionals[0]}: ${kv.numLayers} layers, ${folder.config.ops ?? 'standard'} operators, ${folder.config.dtype}\n`);
for (const attention of LOOP_ATTENTIONS) {
  if (attention === 'gqa' && folder.config.ops !== 'fused') continue;
  const loop = buildVanillaLoopModel(target, kv, { attention, maxPositions: Number(flags['max-positions']) });
  const body = loop.graph.node.find((n) => n.op_type === 'Loop')!.attribute.find((a) => a.name === 'body')!.g!;
  const byOp = new Map<string, number>();
  for (const node of body.node) byOp.set(node.op_type, (byOp.get(node.op_type) ?? 0) + 1);
  const ops = [...byOp].sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
  process.stdout.write(`vanilla_loop, attention ${attention}: ${body.node.length} nodes per step (${(body.node.length / kv.numLayers).toFixed(1)} per layer); ${ops}\n`);
}
