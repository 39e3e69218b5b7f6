/**
 * How many nodes onnxruntime actually runs for a graph: creates a CPU session with every graph
 * optimization on, saves the optimized model and prints the node count and op histogram before and
 * after (docs/fused-loop.md: the per-node overhead that bounds a decode step).
 *
 *   node --import tsx scripts/optimized-graph.ts models/demo/target.onnx
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrt } from '../src/model/ort-runtime.js';
import { decodeModel, type NodeProto } from '../src/model/onnx/proto.js';

const path = process.argv[2];
if (!path) throw new Error('usage: optimized-graph.ts MODEL.onnx');
const dir = mkdtempSync(join(tmpdir(), 'fr-spec-optimized-'));
try {
  const optimized = join(dir, 'optimized.onnx');
  const session = await loadOrt().InferenceSession.create(path, { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized, executionProviders: ['cpu'], logSeverityLevel: 3 });
  await session.release();
  const histogram = (nodes: NodeProto[]) => {
    const counts = new Map<string, number>();
    for (const n of nodes) counts.set(`${n.domain ? `${n.domain}.` : ''}${n.op_type}`, (counts.get(`${n.domain ? `${n.domain}.` : ''}${n.op_type}`) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
  };
  for (const [label, file] of [['as written', path], ['after onnxruntime\'s optimizations', optimized]]) {
    const nodes = decodeModel(readFileSync(file)).graph.node;
    process.stdout.write(`${label}: ${nodes.length} nodes (${histogram(nodes)})\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
