/**
 * Times the graphs of an exported model folder on the CUDA provider, per `session.run` call
 * (host↔device transfers of every input and output included, as the engine will pay them).
 *
 *   node --import tsx test/gpu/time-sessions.ts <model-dir> [--iterations 20] [--ep cuda|cpu]
 *        [--allow-cpu-fallback] [--subsets 8192,16384,32768,65536]
 *
 * Sessions are created with session.disable_cpu_ep_fallback = '1' unless --allow-cpu-fallback, so
 * any node without a CUDA kernel fails session creation instead of silently running on the CPU.
 * onnxruntime-node comes from $FR_SPEC_ORT_DIR when set (the offline GPU kit), else node_modules.
 *
 * Cases per decoder graph (target, draft, EAGLE head): prefill S=128 P=0, decode S=1 P=128, tree
 * verify S=60 P=1024. LM heads: the full head and FR-Spec subset heads over 1, 10 and 60 rows, k=10.
 */
import { parseArgs } from 'node:util';
import { allocFloatData, type FloatData } from '../../src/model/float-data.js';
import { EagleSession, type DecoderSession, type DecoderStep, type HeadSession } from '../../src/model/graph-sessions.js';
import { ModelSessions } from '../../src/model/session.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    iterations: { type: 'string', default: '20' },
    ep: { type: 'string', default: 'cuda' },
    'allow-cpu-fallback': { type: 'boolean', default: false },
    subsets: { type: 'string', default: '8192,16384,32768,65536' },
  },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node --import tsx test/gpu/time-sessions.ts <model-dir> [--iterations N] [--ep cuda|cpu] [--allow-cpu-fallback] [--subsets r1,r2,…]\n');
  process.exit(2);
}
const ITERATIONS = Number(flags.iterations);
const WARMUP = 3;
const MASKED = -3.4028234663852886e38;

interface Row {
  graph: string;
  case: string;
  times: number[];
}

async function time(graph: string, label: string, call: () => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < WARMUP; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const start = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { graph, case: label, times };
}

/** Random ids, positions after the past, and a mask where new token i sees the past and new tokens ≤ i. */
function step(s: number, past: number, kv: { numLayers: number; numKvHeads: number; headDim: number }, vocab: number, dtype: 'float16' | 'float32'): DecoderStep {
  const attentionBias = new Float32Array(s * (past + s));
  for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) attentionBias[i * (past + s) + past + j] = MASKED;
  const rows = past * kv.numKvHeads * kv.headDim;
  return {
    inputIds: Array.from({ length: s }, () => Math.floor(Math.random() * vocab)),
    positionIds: Array.from({ length: s }, (_, i) => past + i),
    attentionBias,
    pastKeys: Array.from({ length: kv.numLayers }, () => allocFloatData(dtype, rows)),
    pastValues: Array.from({ length: kv.numLayers }, () => allocFloatData(dtype, rows)),
  };
}

const CASES = [
  { label: 'prefill S=128 P=0', s: 128, past: 0 },
  { label: 'decode S=1 P=128', s: 1, past: 128 },
  { label: 'tree verify S=60 P=1024', s: 60, past: 1024 },
];

async function timeDecoder(name: string, session: DecoderSession | EagleSession, vocab: number, dtype: 'float16' | 'float32'): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of CASES) {
    const input = step(c.s, c.past, session.kv, vocab, dtype);
    const feature = allocFloatData(dtype, c.s * session.hiddenSize);
    const run = session instanceof EagleSession ? () => session.run({ ...input, feature }) : () => session.run(input);
    rows.push(await time(name, c.label, run));
  }
  return rows;
}

async function timeHead(name: string, head: HeadSession, dtype: 'float16' | 'float32'): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of [1, 10, 60]) {
    const hidden: FloatData = allocFloatData(dtype, n * head.hiddenSize);
    rows.push(await time(name, `${n} rows, k=10`, () => head.run(hidden, 10)));
  }
  return rows;
}

function printTable(rows: Row[]): void {
  const stats = rows.map((row) => {
    const sorted = [...row.times].sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    return [row.graph, row.case, sorted[Math.floor(sorted.length / 2)].toFixed(3), mean.toFixed(3), sorted[0].toFixed(3)];
  });
  const header = ['graph', 'case', 'median ms', 'mean ms', 'min ms'];
  const widths = header.map((h, i) => Math.max(h.length, ...stats.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of stats) console.log(line(row));
}

const started = performance.now();
const sessions = await ModelSessions.open(positionals[0], {
  ep: flags.ep as 'cuda' | 'cpu',
  strictDevice: !flags['allow-cpu-fallback'],
  logSeverityLevel: 2,
});
const { config } = sessions.folder;
console.log(`${positionals[0]}: ${config.dtype}, vocab ${config.vocab_size}, hidden ${config.hidden_size}, ${config.target.architecture.num_layers} target layers; ` +
  `provider ${sessions.ep}${sessions.ep === 'cuda' && !flags['allow-cpu-fallback'] ? ' (CPU fallback disabled)' : ''}; sessions ready in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
  `${ITERATIONS} timed calls after ${WARMUP} warm-up calls`);

const rows: Row[] = [];
try {
  rows.push(...(await timeDecoder('target', sessions.target, config.vocab_size, config.dtype)));
  if (sessions.draft) rows.push(...(await timeDecoder('draft', sessions.draft, config.vocab_size, config.dtype)));
  if (sessions.eagle) rows.push(...(await timeDecoder('eagle', sessions.eagle, config.vocab_size, config.dtype)));
  rows.push(...(await timeHead(`lm_head (V=${config.vocab_size})`, sessions.head, config.dtype)));
  for (const r of flags.subsets.split(',').map(Number).filter((r) => r > 0 && r < config.vocab_size)) {
    const ids = Array.from({ length: r }, (_, i) => i); // which ids does not matter for timing
    rows.push(...(await timeHead(`subset head (r=${r})`, await sessions.subsetHead(ids), config.dtype)));
  }
  printTable(rows);
} finally {
  await sessions.release();
}
