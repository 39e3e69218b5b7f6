/**
 * Sessions over a model folder: onnxruntime sessions for every graph, created once (creating and
 * releasing sessions leaks memory in onnxruntime-node) on the chosen execution provider and checked
 * against the contract. FR-Spec subset heads are built at load time from rows of the exported LM
 * head and cached per subset.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { UserError } from '../util/errors.js';
import { PromiseCache } from '../util/promise-cache.js';
import { assertConforms, decoderSpec, eagleSpec, headSpec, type GraphSpec } from './contract.js';
import { DecoderSession, EagleSession, HeadSession, type KvLayout } from './graph-sessions.js';
import { withWeightsFolder } from './fused/loop-session.js';
import { decoderArgmaxInTwoLevels } from './fused/vocab-reductions.js';
import { HeadWeights } from './head-weights.js';
import { buildLmHeadGraph } from './lm-head-graph.js';
import type { GraphBuilder } from './onnx/builder.js';
import { decodeModel, encodeModel, type ModelProto } from './onnx/proto.js';
import { ModelFolder, type DecoderFacts } from './model-folder.js';
import { loadOrt, resolveExecutionProvider, type ExecutionProvider, type ExecutionProviderChoice, type Ort } from './ort-runtime.js';

export interface ModelSessionsOptions {
  /** Default 'auto': CUDA when its provider library is installed, else CPU. */
  ep?: ExecutionProviderChoice;
  deviceId?: number;
  /** Intra-op threads on the CPU provider (onnxruntime's default: one per physical core). */
  threads?: number;
  /** On CUDA, fail at load time if any node would fall back to the CPU (session.disable_cpu_ep_fallback). */
  strictDevice?: boolean;
  /** onnxruntime's log level: 0 verbose … 4 fatal. Default 3 (errors). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Turn on onnxruntime's session profiling: every session writes a Chrome-trace JSON into this folder (src/engine/profile.ts reads them). */
  profileDir?: string;
  /** Diagnostics (bench/gpu/engines.ts): onnxruntime settings to try against the defaults. */
  tuning?: SessionTuning;
}

/** onnxruntime session settings a benchmark may vary. */
export interface SessionTuning {
  /** false: no memory pattern (onnxruntime plans one per set of input shapes by default). */
  memPattern?: boolean;
  /** Extra session configuration entries (`session.*` keys of onnxruntime_session_options_config_keys.h, without the prefix). */
  sessionEntries?: Readonly<Record<string, string>>;
}

export function sessionOptions(ep: ExecutionProvider, options: ModelSessionsOptions = {}): ort.InferenceSession.SessionOptions {
  const sessionEntries: Record<string, unknown> = {};
  if (ep === 'cuda') {
    // Keeps onnxruntime from spinning a CPU core while it waits for the GPU.
    sessionEntries.intra_op = { allow_spinning: '0' };
    if (options.strictDevice) sessionEntries.disable_cpu_ep_fallback = '1';
  }
  Object.assign(sessionEntries, options.tuning?.sessionEntries);
  const threads = ep === 'cuda' ? 1 : options.threads;
  return {
    ...(options.tuning?.memPattern === false && { enableMemPattern: false }),
    executionProviders: ep === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceId ?? 0 }] : ['cpu'],
    graphOptimizationLevel: 'all',
    // The binding rejects an explicit undefined.
    ...(threads !== undefined && { intraOpNumThreads: threads }),
    logSeverityLevel: options.logSeverityLevel ?? 3,
    extra: { session: sessionEntries },
    ...(options.profileDir !== undefined && { enableProfiling: true, profileFilePrefix: join(options.profileDir, 'session') }),
  };
}

/**
 * `options` for the session called `name`: with profiling on, its trace goes to `<profileDir>/<name>_<timestamp>.json`
 * (one prefix per session, so sessions that end profiling in the same millisecond do not overwrite each other).
 */
export function namedSessionOptions(options: ort.InferenceSession.SessionOptions, name: string): ort.InferenceSession.SessionOptions {
  if (!options.enableProfiling || options.profileFilePrefix === undefined) return options;
  return { ...options, profileFilePrefix: join(options.profileFilePrefix, '..', name.replace(/[^A-Za-z0-9_.-]+/g, '_')) };
}

/** Ends profiling on `sessions` (those opened with profiling on), which writes their trace files. */
export function endProfiling(options: ort.InferenceSession.SessionOptions, sessions: readonly (ort.InferenceSession | undefined)[]): void {
  if (!options.enableProfiling) return;
  for (const session of sessions) session?.endProfiling();
}

/** Creates a session and checks its inputs and outputs against `spec`. */
export async function createCheckedSession(ortModule: Ort, model: string | Uint8Array, label: string, spec: GraphSpec, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  let session: ort.InferenceSession;
  try {
    session = typeof model === 'string' ? await ortModule.InferenceSession.create(model, options) : await ortModule.InferenceSession.create(model, options);
  } catch (error) {
    throw new UserError(`${label}: onnxruntime could not load it: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    assertConforms(label, spec, { inputs: session.inputMetadata, outputs: session.outputMetadata });
  } catch (error) {
    await session.release();
    throw error;
  }
  return session;
}

/**
 * A decoder graph's bytes with its argmax over the vocabulary taken in two levels (src/model/fused/vocab-reductions.ts:
 * exact, and on CUDA far faster than onnxruntime's one-level ArgMax over a long axis); undefined when the graph has
 * no such ArgMax or the vocabulary no block width, and the file loads as it is.
 */
function argmaxInTwoLevels(path: string, vocab: number): Uint8Array | undefined {
  let twoLevel: { model: ModelProto; rewritten: number };
  try {
    twoLevel = decoderArgmaxInTwoLevels(decodeModel(readFileSync(path)), vocab);
  } catch {
    return undefined; // not the exported pattern, or not a model at all: onnxruntime loads (or refuses) the file itself
  }
  return twoLevel.rewritten > 0 ? encodeModel(twoLevel.model) : undefined;
}

const kvLayout = (facts: { num_layers: number; num_kv_heads: number; head_dim: number }): KvLayout => ({
  numLayers: facts.num_layers,
  numKvHeads: facts.num_kv_heads,
  headDim: facts.head_dim,
});

export class ModelSessions {
  private readonly subsetHeads = new PromiseCache<string, HeadSession>();
  private headWeights?: HeadWeights;

  private constructor(
    private readonly ort: Ort,
    readonly folder: ModelFolder,
    readonly ep: ExecutionProvider,
    private readonly options: ort.InferenceSession.SessionOptions,
    readonly target: DecoderSession,
    /** The full-vocabulary draft head (EAGLE-2). */
    readonly head: HeadSession,
    readonly eagle?: EagleSession,
    readonly draft?: DecoderSession,
  ) {}

  static async open(dir: string, options: ModelSessionsOptions = {}): Promise<ModelSessions> {
    const folder = ModelFolder.open(dir);
    const ep = resolveExecutionProvider(options.ep ?? 'auto');
    const ortModule = loadOrt();
    const opts = sessionOptions(ep, options);
    const { config } = folder;
    const load = (file: string, spec: GraphSpec, model?: Uint8Array) => {
      const named = namedSessionOptions(opts, file.replace(/\.onnx$/, ''));
      return createCheckedSession(ortModule, model ?? folder.path(file), `${dir}/${file}`, spec, model ? withWeightsFolder(named, folder.dir) : named);
    };
    const decoder = async (entry: { file: string; architecture: DecoderFacts }) => {
      const session = await load(entry.file, decoderSpec(entry.architecture, config.dtype), argmaxInTwoLevels(folder.path(entry.file), entry.architecture.vocab_size));
      return new DecoderSession(ortModule, session, kvLayout(entry.architecture), config.dtype, entry.architecture.hidden_size);
    };

    const target = await decoder(config.target);
    const head = new HeadSession(ortModule, await load(config.lm_head.file, headSpec(config)), config.dtype, config.hidden_size, config.lm_head.vocab_size);
    const eagle = config.eagle
      ? new EagleSession(ortModule, await load(config.eagle.file, eagleSpec(config)), kvLayout(config.eagle.architecture), config.dtype, config.hidden_size)
      : undefined;
    const draft = config.draft ? await decoder(config.draft) : undefined;
    return new ModelSessions(ortModule, folder, ep, opts, target, head, eagle, draft);
  }

  get dtype() {
    return this.folder.config.dtype;
  }

  /**
   * The FR-Spec draft head over `vocabIds` (e.g. a freq_{r} subset): rows of the target's LM head,
   * log-softmax over the subset, top-k ids returned in the full vocabulary. Built once per subset.
   */
  subsetHead(vocabIds: ArrayLike<number>): Promise<HeadSession> {
    const ids = Int32Array.from(vocabIds as ArrayLike<number>);
    const key = createHash('sha1').update(new Uint8Array(ids.buffer)).digest('hex');
    return this.subsetHeads.get(key, () => this.buildSubsetHead(ids));
  }

  /** The FR-Spec head graph over `vocabIds`, with its rows inline (what subsetHead runs, and what the fused loop inlines). */
  subsetHeadGraph(vocabIds: ArrayLike<number>): GraphBuilder {
    const ids = Int32Array.from(vocabIds as ArrayLike<number>);
    if (ids.length === 0) throw new UserError('an FR-Spec subset needs at least one vocabulary id');
    if (new Set(ids).size !== ids.length) throw new UserError('the FR-Spec subset lists a vocabulary id more than once');
    const { config } = this.folder;
    this.headWeights ??= HeadWeights.open(this.folder.path(config.lm_head.file));
    return buildLmHeadGraph({ dtype: config.dtype, hiddenSize: config.hidden_size, weights: this.headWeights.readStoredRows(ids), vocabIds: ids });
  }

  private async buildSubsetHead(ids: Int32Array): Promise<HeadSession> {
    const { config } = this.folder;
    const graph = this.subsetHeadGraph(ids);
    const label = `FR-Spec head over ${ids.length} ids`;
    const session = await createCheckedSession(this.ort, graph.toBytes(), label, headSpec(config), namedSessionOptions(this.options, `fr_spec_head_${ids.length}`));
    return new HeadSession(this.ort, session, config.dtype, config.hidden_size, ids.length);
  }

  /** With profiling on: ends it on every session opened so far (the subset heads included), writing their trace files. */
  async endProfiling(): Promise<void> {
    const subsets = await this.subsetHeads.settled();
    endProfiling(this.options, [this.target, this.head, this.eagle, this.draft, ...subsets].map((s) => s?.session));
  }

  async release(): Promise<void> {
    const subsets = await this.subsetHeads.settled();
    this.subsetHeads.clear();
    const sessions = [this.target, this.head, this.eagle, this.draft, ...subsets];
    await Promise.all(sessions.map((s) => s?.release()));
  }
}
