/**
 * Reads the onnxruntime session profiles (Chrome-trace JSON, `SessionOptions.enableProfiling`) that the
 * sessions of one generation wrote, and splits each session's `session.run` time into kernel time and
 * the rest.
 *
 * Events counted (onnxruntime-node 1.29; all `ph: "X"` with `dur` in µs):
 * - run: cat "Session", name "model_run" — one per `session.run`, from entry to return inside
 *   onnxruntime: copying feeds to the execution provider, executing the plan, copying fetches back
 *   to the host (which waits for the device stream). Not counted: "model_loading_uri" /
 *   "model_loading_array" and "session_initialization" (session creation, before generation).
 * - executor: cat "Session", name "SequentialExecutor::Execute" — the execution plan (all nodes)
 *   within a run (outermost only: a Loop body's executions nest inside); run − executor is the
 *   feed/fetch copying around it plus per-run setup.
 * - kernel: cat "Node", name "<node>_kernel_time", inside a model_run interval, except copy nodes
 *   and except events nested inside another kernel event (subgraph nodes of Loop / If / Scan, whose
 *   time the control-flow node's own event already includes).
 * - copies: cat "Node" "<node>_kernel_time" events whose args.op_name is MemcpyToHost or
 *   MemcpyFromHost (copy nodes the graph partitioner inserts between providers, e.g. CPU-placed
 *   nodes on a CUDA session). Absent on a CPU-only session.
 * - sync: cat "Node" "<node>_fence_before" / "<node>_fence_after" events (older onnxruntime
 *   builds wrote these; 1.29 on the CPU does not), summed separately when present.
 * - outside kernels = run − kernel − copies: feed upload, fetch download, stream synchronisation
 *   and onnxruntime's own per-run work.
 *
 * Caveat on CUDA: "kernel_time" is host-side time in each kernel's Compute(), i.e. mostly the
 * asynchronous launch. GPU execution still in flight is waited for wherever the host next
 * synchronises (a Memcpy node or the fetch copy), so on CUDA "outside kernels" includes waiting for
 * GPU compute and is an upper bound on transfer time, not a measurement of it.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface TraceEvent {
  cat?: string;
  name?: string;
  ph?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

const COPY_OPS = new Set(['MemcpyToHost', 'MemcpyFromHost']);

export interface SessionProfile {
  /** The session's name: the trace file name without its `_<timestamp>.json` suffix. */
  session: string;
  file: string;
  runs: number;
  /** Σ model_run, ms. */
  runMs: number;
  /** Σ SequentialExecutor::Execute, ms. */
  executorMs: number;
  /** Σ node kernel time inside runs, copy nodes excluded, ms. */
  kernelMs: number;
  /** Σ MemcpyToHost / MemcpyFromHost node time, ms (0 when the graph has none). */
  copyMs: number;
  copyNodes: number;
  /** Σ fence_before / fence_after events, ms (0 when the trace has none). */
  syncMs: number;
  /** runMs − kernelMs − copyMs (≥ 0): transfers, synchronisation, onnxruntime overhead. */
  outsideKernelsMs: number;
  /** Node time by provider (kernel and copy nodes), ms. */
  providers: Record<string, number>;
}

/** Session name from a trace file `<name>_YYYY-MM-DD_HH-MM-SS[_ms].json`. */
export function profileSessionName(file: string): string {
  return basename(file, '.json').replace(/_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?$/, '');
}

/**
 * Drops kernel events nested in another one: nodes of a Loop / If / Scan subgraph are recorded
 * inside their control-flow node's own kernel_time, which already covers them.
 */
function outermost(events: readonly TraceEvent[]): TraceEvent[] {
  const sorted = [...events].sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!);
  const kept: TraceEvent[] = [];
  let end = Number.NEGATIVE_INFINITY;
  for (const e of sorted) {
    if (e.ts! + e.dur! <= end) continue;
    kept.push(e);
    end = Math.max(end, e.ts! + e.dur!);
  }
  return kept;
}

export function parseProfile(events: readonly TraceEvent[], file = ''): SessionProfile {
  const complete = events.filter((e) => typeof e.dur === 'number' && typeof e.ts === 'number');
  const runs = complete.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const inRun = (e: TraceEvent) => runs.some((r) => e.ts! >= r.ts! && e.ts! <= r.ts! + r.dur!);
  const sum = (list: readonly TraceEvent[]) => list.reduce((s, e) => s + e.dur!, 0) / 1000;
  const nodes = complete.filter((e) => e.cat === 'Node' && inRun(e));
  const kernels = outermost(nodes.filter((e) => e.name?.endsWith('_kernel_time')));
  const copies = kernels.filter((e) => COPY_OPS.has(e.args?.op_name ?? ''));
  const compute = kernels.filter((e) => !COPY_OPS.has(e.args?.op_name ?? ''));
  const fences = nodes.filter((e) => /_fence_(before|after)$/.test(e.name ?? ''));
  const providers: Record<string, number> = {};
  for (const e of kernels) {
    const p = e.args?.provider ?? 'unknown';
    providers[p] = (providers[p] ?? 0) + e.dur! / 1000;
  }
  const runMs = sum(runs);
  const kernelMs = sum(compute);
  const copyMs = sum(copies);
  return {
    session: profileSessionName(file),
    file,
    runs: runs.length,
    runMs,
    executorMs: sum(outermost(complete.filter((e) => e.cat === 'Session' && e.name === 'SequentialExecutor::Execute' && inRun(e)))),
    kernelMs,
    copyMs,
    copyNodes: copies.length,
    syncMs: sum(fences),
    outsideKernelsMs: Math.max(0, runMs - kernelMs - copyMs),
    providers,
  };
}

export function readProfile(file: string): SessionProfile {
  return parseProfile(JSON.parse(readFileSync(file, 'utf8')) as TraceEvent[], file);
}

export interface ProfileShares {
  run: number;
  kernel: number;
  copies: number;
  outsideKernels: number;
}

export interface GenerationProfile {
  /** The generation's wall time (stats.milliseconds.total), ms. */
  wallMs: number;
  sessions: (SessionProfile & { share: ProfileShares })[];
  total: Omit<SessionProfile, 'session' | 'file' | 'providers'> & { share: ProfileShares };
}

const shareOf = (p: { runMs: number; kernelMs: number; copyMs: number; outsideKernelsMs: number }, wallMs: number): ProfileShares => {
  const f = (ms: number) => (wallMs > 0 ? Math.min(1, Math.max(0, ms / wallMs)) : 0);
  return { run: f(p.runMs), kernel: f(p.kernelMs), copies: f(p.copyMs), outsideKernels: f(p.outsideKernelsMs) };
};

/** Per session and in total, each time also as a share of the generation's wall time. Sessions that never ran are left out. */
export function summarizeProfiles(files: readonly string[], wallMs: number): GenerationProfile {
  const sessions = files.map(readProfile).filter((p) => p.runs > 0).sort((a, b) => b.runMs - a.runMs);
  const add = (key: 'runs' | 'runMs' | 'executorMs' | 'kernelMs' | 'copyMs' | 'copyNodes' | 'syncMs' | 'outsideKernelsMs') => sessions.reduce((s, p) => s + p[key], 0);
  const total = {
    runs: add('runs'),
    runMs: add('runMs'),
    executorMs: add('executorMs'),
    kernelMs: add('kernelMs'),
    copyMs: add('copyMs'),
    copyNodes: add('copyNodes'),
    syncMs: add('syncMs'),
    outsideKernelsMs: add('outsideKernelsMs'),
  };
  return { wallMs, sessions: sessions.map((p) => ({ ...p, share: shareOf(p, wallMs) })), total: { ...total, share: shareOf(total, wallMs) } };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => `${x.toFixed(1)} ms`;

/** The stderr lines of `--profile`. */
export function formatProfile(profile: GenerationProfile): string[] {
  const line = (name: string, p: GenerationProfile['total'] | GenerationProfile['sessions'][number]) =>
    `  ${name}: ${p.runs} runs, session.run ${ms(p.runMs)} (${pct(p.share.run)}), kernels ${ms(p.kernelMs)} (${pct(p.share.kernel)}), ` +
    `run time outside kernels (transfers, sync, ORT overhead) ${ms(p.outsideKernelsMs)} (${pct(p.share.outsideKernels)})` +
    (p.copyNodes > 0 ? `, copies ${ms(p.copyMs)} (${pct(p.share.copies)}, ${p.copyNodes} Memcpy nodes)` : '') +
    (p.syncMs > 0 ? `, fences ${ms(p.syncMs)}` : '');
  return [
    `profile: generation wall time ${ms(profile.wallMs)}; shares below are of that (profiling itself adds overhead)`,
    ...profile.sessions.map((p) => line(p.session, p)),
    line('total', profile.total),
  ];
}
