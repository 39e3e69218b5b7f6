/**
 * `fr-spec bench` as a function: check every input before loading anything, open (or resume) the
 * output folder, measure what it lacks, and write the reports.
 */
import os from 'node:os';
import { resolveExecutionProvider } from '../model/ort-runtime.js';
import { FUSED_METHODS, reservesRowsByDefault, type EngineChoice } from '../engine/engine.js';
import type { DecodeAttention } from '../model/fused/gqa-decode.js';
import { UserError } from '../util/errors.js';
import { loadDataset, type Dataset, type DatasetRequest } from './dataset/load.js';
import { defaultMethodList, headlineMethodList, parseMethodList, resolveMethods } from './methods.js';
import type { Summary } from './metrics.js';
import { readModelInfo, type ModelInfo } from './model-info.js';
import { writeReports } from './report/outputs.js';
import { measurePending, pendingPairs, type BenchPlan, type MeasureOutcome, type RunnerEvents } from './runner.js';
import { BENCH_FORMAT, BENCH_FORMAT_VERSION, type BenchMeta } from './store/records.js';
import { ResultStore, type SavedResults } from './store/result-store.js';
import type { MethodSpec, OpenBackend, PromptStyle } from './types.js';

export interface BenchRequest {
  modelDir: string;
  dataset: DatasetRequest;
  /** Comma-separated; default: every method the model folder can run (the headline three with `quick`). */
  methods?: string;
  /** Default methods limited to vanilla, eagle2 and one fr-spec size, for the embedded run. */
  quick?: boolean;
  /** A build-vocab output folder with more freq_{r}.json subsets. */
  vocabMaps?: string;
  /** Default: the dataset protocol's. */
  maxNewTokens?: number;
  temperature: number;
  seed: number;
  runs: number;
  warmup: number;
  ep: 'cuda' | 'cpu' | 'auto';
  /** Which decoding engine (src/engine/engine.ts's EngineChoice); default auto: fused on CUDA for vanilla, eagle2, fr-spec and sps. */
  engine?: EngineChoice;
  /** vanilla's one-token decode steps (src/engine/engine.ts MethodSettings.decodeAttention); default graph. */
  decodeAttention?: DecodeAttention;
  /** Fused vanilla with reserved cache rows (MethodSettings.reserveRows). */
  reserveRows?: boolean;
  out: string;
  /** Replaces the dataset's system prompt (chat prompts); "" for none. */
  system?: string;
  promptStyle?: 'chat' | 'plain';
}

export interface BenchDependencies {
  openBackend: OpenBackend;
  events?: RunnerEvents;
  signal?: AbortSignal;
  now?: () => Date;
  /** The execution provider an --ep choice resolves to (default: the model layer's rule). */
  resolveDevice?: (ep: BenchRequest['ep']) => BenchRequest['ep'];
}

export interface BenchOutcome extends MeasureOutcome {
  saved: SavedResults;
  summary: Summary;
  /** Pairs already in the folder before this invocation. */
  resumed: number;
}

export async function runBench(request: BenchRequest, deps: BenchDependencies): Promise<BenchOutcome> {
  const now = deps.now ?? (() => new Date());
  const dataset = loadDataset(request.dataset);
  const model = readModelInfo(request.modelDir, request.vocabMaps);
  const methods = resolveMethods(parseMethodList(request.methods ?? (request.quick ? headlineMethodList(model) : defaultMethodList(model))), model);
  const style = promptStyle(dataset, request);
  const ep = (deps.resolveDevice ?? resolveExecutionProvider)(request.ep);
  const engine = request.engine ?? 'auto';
  // Results of the two engines differ in speed, so the engine is part of the device a folder holds.
  const decodeAttention = request.decodeAttention ?? 'graph';
  // …and so is vanilla's decode attention: another vanilla baseline.
  const device = `${ep}, ${engineLabel(engine, ep)}${decodeAttention === 'gqa' ? ', vanilla decode steps with GroupQueryAttention' : ''}${(request.reserveRows ?? reservesRowsByDefault(ep, decodeAttention)) ? ', vanilla with reserved cache rows' : ''}`;
  const plan: BenchPlan = {
    questions: dataset.questions,
    methods,
    style,
    maxNewTokens: request.maxNewTokens ?? dataset.maxNewTokens,
    temperature: request.temperature,
    seed: request.seed,
    runs: request.runs,
    warmup: request.warmup,
  };
  const store = ResultStore.open(request.out, benchMeta(plan, dataset, model, methods, device, now().toISOString()));
  const resumed = store.records.length;
  let outcome: MeasureOutcome = { measured: 0, interrupted: false };
  try {
    if (pendingPairs(plan, store).length > 0) {
      const backend = await deps.openBackend({ modelDir: model.dir, ep, engine, decodeAttention, reserveRows: request.reserveRows });
      try {
        outcome = await measurePending(plan, store, backend, deps.events, deps.signal);
      } finally {
        await backend.close();
      }
      store.touch(now().toISOString());
    }
  } finally {
    store.close();
  }
  const saved: SavedResults = { dir: store.dir, meta: store.benchMeta, records: store.records };
  return { ...outcome, resumed, saved, summary: writeReports(saved) };
}

/** The engine in words: fused applies to FUSED_METHODS (vanilla, eagle2, fr-spec, sps); ouroboros runs on the host. */
function engineLabel(engine: EngineChoice, ep: string): string {
  // The bench samples at top-p 1, which the fused loop covers too.
  return engine === 'fused' || (engine === 'auto' && ep === 'cuda') ? `fused engine (${FUSED_METHODS.join(', ')}; others host)` : 'host engine';
}

function promptStyle(dataset: Dataset, request: BenchRequest): PromptStyle {
  const kind = request.promptStyle ?? dataset.style.kind;
  if (kind === 'plain') {
    if (request.system !== undefined) throw new UserError('--system applies to chat prompts, not to --prompt-style plain');
    return dataset.style.kind === 'plain' ? dataset.style : { kind: 'plain', prefix: '' };
  }
  if (dataset.style.kind === 'plain') throw new UserError(`${dataset.name} is asked as plain few-shot text; --prompt-style chat does not apply`);
  const system = request.system ?? dataset.style.system;
  return system ? { kind: 'chat', system } : { kind: 'chat' };
}

function benchMeta(plan: BenchPlan, dataset: Dataset, model: ModelInfo, methods: readonly MethodSpec[], device: string, at: string): BenchMeta {
  return {
    format: BENCH_FORMAT,
    version: BENCH_FORMAT_VERSION,
    model: { dir: model.dir, configSha256: model.configSha256, source: model.source },
    dataset: {
      name: dataset.name,
      format: dataset.format,
      file: dataset.source.file,
      sha256: dataset.source.sha256,
      ...(dataset.fewshot && { fewshot: dataset.fewshot }),
      categories: [...new Set(dataset.questions.map((q) => q.category))],
    },
    settings: { maxNewTokens: plan.maxNewTokens, temperature: plan.temperature, seed: plan.seed, prompt: plan.style },
    device,
    methods: methods.map((m) => m.label),
    runs: plan.runs,
    warmup: plan.warmup,
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown CPU', cores: os.availableParallelism(), node: process.versions.node, platform: `${process.platform}/${process.arch}` },
    createdAt: at,
    updatedAt: at,
  };
}
