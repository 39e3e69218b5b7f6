/**
 * What the fused engines (fused-vanilla.ts, fused-eagle.ts) share: their loop sessions (the greedy
 * one, plus sampling variants built on first use), the start of a generation (checks, transcript,
 * the session and the token chooser for the settings), the cache inputs, the sampling
 * feeds and the metered Loop run.
 */
import type * as ort from 'onnxruntime-node';
import type { FloatData } from '../../model/float-data.js';
import type { FloatDType } from '../../model/onnx/dtypes.js';
import { SAMPLING_IO } from '../../model/fused/sampling-ops.js';
import { createSessionFromModel } from '../../model/fused/loop-session.js';
import type { ModelProto } from '../../model/onnx/proto.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { namedSessionOptions, sessionOptions } from '../../model/session.js';
import { UserError } from '../../util/errors.js';
import { PromiseCache } from '../../util/promise-cache.js';
import type { KvDecoder } from '../decoder.js';
import type { KvShape } from '../kv-arena.js';
import type { GenerateOptions, GenerationResult } from '../engine.js';
import { byteSize, RunMeter } from '../meter.js';
import { TokenChooser } from '../methods/context.js';
import type { EngineModel } from '../model.js';
import { SeededRandom } from '../random.js';
import { checkSampling, GREEDY, isGreedy, type SamplingParams } from '../sampling.js';
import { checkPromptIds, Transcript } from '../transcript.js';

/** The sampling graphs: plain (top-p 1) or with nucleus truncation (top-p < 1, a sort over the vocabulary per row). */
export type SamplingVariant = 'plain' | 'nucleus';

export interface FusedOptions extends GenerateOptions {
  /** Most tokens decoded per Loop run; default: the whole generation in one run. */
  chunk?: number;
}

/** How the fused engines create their loop sessions (src/model/session.ts sessionOptions). */
export interface LoopSessionSettings {
  threads?: number;
  /** On CUDA, fail session creation instead of placing a node on the CPU (timing checks). */
  strictDevice?: boolean;
  profileDir?: string;
}

/** A loop's sessions: greedy, created up front, and each sampling variant, created on first use. */
export class LoopSessions {
  /**
   * The sessions of the loop graph `build` makes for `model`'s folder (`build()` greedy, `build(variant)`
   * each sampling variant), named `name` and `name_VARIANT_sampling` in profiles; loaded from bytes with
   * the folder's weights.data (createSessionFromModel).
   */
  static async create(model: EngineModel, name: string, settings: LoopSessionSettings, build: (sampling?: SamplingVariant) => ModelProto): Promise<LoopSessions> {
    const ortModule = loadOrt();
    const { ep, folder } = model.sessions;
    const options = (sessionName: string) => namedSessionOptions(sessionOptions(ep, { ...settings, tuning: model.tuning }), sessionName);
    const greedy = await createSessionFromModel(ortModule, build(), folder.dir, options(name));
    const createSampling = (variant: SamplingVariant) => createSessionFromModel(ortModule, build(variant), folder.dir, options(`${name}_${variant}_sampling`));
    return new LoopSessions(greedy, createSampling, settings.profileDir !== undefined);
  }

  private readonly sampling = new PromiseCache<SamplingVariant, ort.InferenceSession>();

  constructor(
    readonly greedy: ort.InferenceSession,
    private readonly createSampling: (variant: SamplingVariant) => Promise<ort.InferenceSession>,
    private readonly profiling: boolean,
  ) {}

  /** The session for these settings (undefined: greedy). */
  for(sampling: SamplingParams | undefined): Promise<ort.InferenceSession> {
    if (!sampling) return Promise.resolve(this.greedy);
    const variant: SamplingVariant = sampling.topP < 1 ? 'nucleus' : 'plain';
    return this.sampling.get(variant, () => this.createSampling(variant));
  }

  /** Ends onnxruntime profiling, if the sessions were created with it, writing their trace files. */
  async endProfiling(): Promise<void> {
    if (!this.profiling) return;
    this.greedy.endProfiling();
    for (const session of await this.sampling.settled()) session.endProfiling();
  }

  async release(): Promise<void> {
    await this.greedy.release();
    for (const session of await this.sampling.settled()) await session.release();
    this.sampling.clear();
  }
}

/** What every fused engine has: the model it runs, onnxruntime, and its loop sessions. */
export abstract class FusedEngine {
  protected constructor(
    readonly model: EngineModel,
    protected readonly ort: Ort,
    readonly sessions: LoopSessions,
  ) {}

  abstract generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult>;

  /** Ends onnxruntime profiling, if the loop sessions were created with it, writing their trace files. */
  endProfiling(): Promise<void> {
    return this.sessions.endProfiling();
  }

  release(): Promise<void> {
    return this.sessions.release();
  }
}

/** One generation on a fused loop, after its checks; the clock starts when it is made. */
export interface FusedStart {
  /** Undefined when greedy. */
  sampling?: SamplingParams;
  chunk: number;
  stopIds: readonly number[];
  transcript: Transcript;
  session: ort.InferenceSession;
  random: SeededRandom;
  meter: RunMeter;
  /** The target's choice of the token after the prompt (argmax, or a draw as the host methods make it). */
  targetChoice: TokenChooser;
  started: number;
}

/**
 * Checks the prompt and settings, makes the transcript, and builds what sampling needs (the LM head
 * for the first token's distribution, the loop's sampling variant) before the clock starts.
 */
export async function startFused(model: EngineModel, sessions: LoopSessions, prompt: readonly number[], options: FusedOptions): Promise<FusedStart> {
  const params = options.sampling ?? GREEDY;
  checkSampling(params);
  const sampling = isGreedy(params) ? undefined : params;
  const chunk = options.chunk ?? Number.POSITIVE_INFINITY;
  if (!(chunk >= 1)) throw new UserError(`the fused loop's chunk must be at least 1 token, got ${chunk}`);
  checkPromptIds(prompt, model.config.vocab_size);
  const stopIds = options.stopIds ?? [];
  const transcript = new Transcript(prompt, { maxNewTokens: options.maxNewTokens, stopIds, contextLength: model.contextLength }, options.onTokens);
  const logitsHead = sampling ? await model.targetLogitsHead() : undefined;
  const session = await sessions.for(sampling);
  const random = new SeededRandom(options.seed ?? 0);
  const meter = new RunMeter();
  const targetChoice = new TokenChooser(params, random, meter, 'verify', logitsHead);
  return { sampling, chunk, stopIds, transcript, session, random, meter, targetChoice, started: performance.now() };
}

/** New tokens the loop may generate after the first one: the token budget and the context both bound it. */
export function loopBudget(maxNewTokens: number, contextLength: number, cachedRows: number): number {
  return Math.min(maxNewTokens - 1, contextLength - cachedRows - 1);
}

/**
 * The cache rows a vanilla generation reserves (`--reserve-rows`) once its prompt fills `cachedRows`: those and
 * one per step the loop may take. The fused loop and the host engine's reserved steps must reserve the same.
 */
export function reservedRowsFor(maxNewTokens: number, contextLength: number, cachedRows: number): number {
  return cachedRows + loopBudget(maxNewTokens, contextLength, cachedRows);
}

/** One layer's cached rows ([L·kvH·D] values) as a loop input [1,L,kvH,D]. */
export function cacheTensor(ortModule: Ort, dtype: FloatDType, rows: FloatData, kv: KvShape): ort.Tensor {
  const width = kv.numKvHeads * kv.headDim;
  return new ortModule.Tensor(dtype, rows, [1, rows.length / width, kv.numKvHeads, kv.headDim]);
}

/** A decoder's caches as a loop run takes them: one tensor per layer, keys and values. */
export interface LoopCaches {
  keys: ort.Tensor[];
  values: ort.Tensor[];
}

/** The names a loop gives one decoder's caches: its inputs and its final outputs, per layer. */
export interface LoopCacheNames {
  key(layer: number): string;
  value(layer: number): string;
  finalKey(layer: number): string;
  finalValue(layer: number): string;
}

/** A decoder's host caches at their exact length, as the first loop run's inputs. */
export function hostLoopCaches(ortModule: Ort, decoder: KvDecoder): LoopCaches {
  const tensor = (rows: FloatData) => cacheTensor(ortModule, decoder.dtype, rows, decoder.kv);
  return { keys: decoder.arena.pastKeys().map(tensor), values: decoder.arena.pastValues().map(tensor) };
}

/** Sets `caches` as `feeds` under `names`. */
export function feedLoopCaches(feeds: Record<string, ort.Tensor>, caches: LoopCaches, names: LoopCacheNames): void {
  caches.keys.forEach((tensor, layer) => (feeds[names.key(layer)] = tensor));
  caches.values.forEach((tensor, layer) => (feeds[names.value(layer)] = tensor));
}

/** The final cache outputs of `layers` layers under `names`, to fetch when a later run goes on from them. */
export function finalLoopCacheNames(layers: number, names: LoopCacheNames): string[] {
  return Array.from({ length: layers }, (_, layer) => [names.finalKey(layer), names.finalValue(layer)]).flat();
}

/** The final caches a run fetched (finalLoopCacheNames), as the next run's inputs. */
export function fetchedLoopCaches(out: ort.InferenceSession.OnnxValueMapType, layers: number, names: LoopCacheNames): LoopCaches {
  const of = (name: (layer: number) => string) => Array.from({ length: layers }, (_, layer) => out[name(layer)]!);
  return { keys: of(names.finalKey), values: of(names.finalValue) };
}

/**
 * Commits a speculative loop run's scanned blocks ([iterations, block] tokens, −1 after each count) to the
 * transcript, one cycle per iteration; returns the iterations and the tokens committed.
 */
export function commitLoopBlocks(transcript: Transcript, out: ort.InferenceSession.OnnxValueMapType, io: { blocks: string; counts: string }, block: number): { iterations: number; committed: number } {
  const counts = Array.from(out[io.counts]!.data as BigInt64Array, Number);
  const blocks = out[io.blocks]!.data as BigInt64Array;
  let committed = 0;
  counts.forEach((count, iteration) => {
    transcript.commit(Array.from(blocks.subarray(iteration * block, iteration * block + count), Number));
    committed += count;
  });
  return { iterations: counts.length, committed };
}

/** The sampling inputs of a run: temperature, top-p (nucleus variant only) and `dims`' worth of fresh uniforms. */
export function samplingFeeds(ortModule: Ort, sampling: SamplingParams, random: SeededRandom, dims: number[]): Record<string, ort.Tensor> {
  const { Tensor } = ortModule;
  const count = dims.reduce((a, b) => a * b, 1);
  const feeds: Record<string, ort.Tensor> = {
    [SAMPLING_IO.temperature]: new Tensor('float32', Float32Array.of(sampling.temperature), []),
    [SAMPLING_IO.uniforms]: new Tensor('float32', Float32Array.from({ length: count }, () => random.uniform()), dims),
  };
  if (sampling.topP < 1) feeds[SAMPLING_IO.topP] = new Tensor('float32', Float32Array.of(sampling.topP), []);
  return feeds;
}

/** One Loop run, counted as one target forward (verify phase) with the bytes of its feeds and fetched outputs. */
export function runLoop(meter: RunMeter, session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetches: string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
  const inputBytes = byteSize(...Object.values(feeds).map((t) => t.data as BigInt64Array | FloatData));
  return meter.measure('target', 'verify', inputBytes, () => session.run(feeds, fetches), (r) => byteSize(...fetches.map((name) => r[name].data as BigInt64Array | FloatData)));
}
