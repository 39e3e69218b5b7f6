/**
 * Greedy vanilla decoding on the fused device loop (src/model/fused/vanilla-loop.ts): the host
 * prefills the prompt with the target graph, as the host engine does, then each `run` of the
 * vanilla_loop session decodes up to `chunk` tokens with the KV cache carried inside the Loop.
 * Between chunks the final caches come back and are fed again; with one chunk (the default) only
 * the generated tokens come back. Output equals the host engine's vanilla method token for token.
 */
import type * as ort from 'onnxruntime-node';
import { allocFloatData, asFloatData, type FloatData } from '../../model/float-data.js';
import { createLoopSession, LOOP_IO } from '../../model/fused/vanilla-loop.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { namedSessionOptions, sessionOptions } from '../../model/session.js';
import { UserError } from '../../util/errors.js';
import { decoderGraph, feedChain, KvDecoder } from '../decoder.js';
import type { GenerateOptions, GenerationResult } from '../engine.js';
import { byteSize, RunMeter } from '../meter.js';
import type { EngineModel } from '../model.js';
import { SeededRandom } from '../random.js';
import { distributionFromLogits, isGreedy, sampleFrom } from '../sampling.js';
import { summarize } from '../stats.js';
import { Transcript } from '../transcript.js';

/** Cache capacity is rounded up to a multiple of this (fewer distinct shapes per session). */
export const CAPACITY_STEP = 64;

/** The sampling graphs: plain (top-p 1) or with nucleus truncation (top-p < 1, a sort over the vocabulary per row). */
export type SamplingVariant = 'plain' | 'nucleus';

export interface FusedOptions extends GenerateOptions {
  /** Most tokens decoded per Loop run; default: the whole generation in one run. */
  chunk?: number;
}

export class FusedVanilla {
  private readonly samplingSessions = new Map<SamplingVariant, Promise<ort.InferenceSession>>();

  private constructor(
    readonly model: EngineModel,
    private readonly ort: Ort,
    readonly session: ort.InferenceSession,
    private readonly profiling: boolean,
    /** Builds a sampling variant of the loop on first use. */
    private readonly createSampling: (variant: SamplingVariant) => Promise<ort.InferenceSession>,
  ) {}

  /** `strictDevice`: on CUDA, fail session creation instead of placing a node on the CPU (timing checks). */
  static async create(model: EngineModel, options: { threads?: number; strictDevice?: boolean; profileDir?: string } = {}): Promise<FusedVanilla> {
    const { sessions } = model;
    const ortModule = loadOrt();
    const { target } = sessions;
    const kv = { ...target.kv, dtype: target.dtype };
    const targetPath = sessions.folder.path(sessions.folder.config.target.file);
    const sessionOptionsFor = (name: string) => namedSessionOptions(sessionOptions(sessions.ep, { threads: options.threads, strictDevice: options.strictDevice, profileDir: options.profileDir }), name);
    const session = await createLoopSession(ortModule, targetPath, kv, sessionOptionsFor('vanilla_loop'));
    const createSampling = (variant: SamplingVariant) => createLoopSession(ortModule, targetPath, kv, sessionOptionsFor(`vanilla_loop_${variant}_sampling`), variant);
    return new FusedVanilla(model, ortModule, session, options.profileDir !== undefined, createSampling);
  }

  /** Ends onnxruntime profiling, if the loop session was created with it, writing its trace file. */
  async endProfiling(): Promise<void> {
    if (!this.profiling) return;
    this.session.endProfiling();
    for (const pending of this.samplingSessions.values()) (await pending.catch(() => undefined))?.endProfiling();
  }

  private samplingSession(variant: SamplingVariant): Promise<ort.InferenceSession> {
    let session = this.samplingSessions.get(variant);
    if (!session) {
      session = this.createSampling(variant);
      this.samplingSessions.set(variant, session);
      session.catch(() => this.samplingSessions.delete(variant));
    }
    return session;
  }

  async release(): Promise<void> {
    await this.session.release();
    for (const pending of this.samplingSessions.values()) await (await pending.catch(() => undefined))?.release();
    this.samplingSessions.clear();
  }

  async generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> {
    const sampling = options.sampling && !isGreedy(options.sampling) ? options.sampling : undefined;
    if (sampling && !Number.isFinite(sampling.temperature)) throw new UserError(`temperature must be a finite number, got ${sampling.temperature}`);
    const chunk = options.chunk ?? Number.POSITIVE_INFINITY;
    if (!(chunk >= 1)) throw new UserError(`the fused loop's chunk must be at least 1 token, got ${chunk}`);
    const vocabSize = this.model.config.vocab_size;
    const outside = prompt.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
    if (outside !== undefined) throw new UserError(`prompt token id ${outside} is outside the model's vocabulary (0..${vocabSize - 1})`);
    const contextLength = this.model.contextLength;
    const stopIds = options.stopIds ?? [];
    const transcript = new Transcript(prompt, { maxNewTokens: options.maxNewTokens, stopIds, contextLength }, options.onTokens);

    // The sampling head and session are built once, before the clock starts.
    const logitsHead = sampling ? await this.model.targetLogitsHead() : undefined;
    const session = sampling ? await this.samplingSession(sampling.topP < 1 ? 'nucleus' : 'plain') : this.session;
    const random = new SeededRandom(options.seed ?? 0);

    const started = performance.now();
    const meter = new RunMeter();
    const { target } = this.model.sessions;
    // The prompt on the host, exactly as the host engine's vanilla method feeds it.
    const decoder = new KvDecoder(decoderGraph(target), meter, 'target', 'verify');
    const fed = await feedChain(decoder, transcript.tokens);
    const first = logitsHead
      ? sampleFrom(distributionFromLogits(await logitsHead.logits(decoder.state(fed.last, fed.last.nodes - 1), meter, 'verify'), sampling!), random.uniform())
      : Number(fed.last.argmax![fed.last.nodes - 1]);
    transcript.commit([first], false);

    // Each step writes one row; the transcript stops by itself at max-new-tokens / context length.
    const past = decoder.length;
    const steps = Math.min(options.maxNewTokens - 1, contextLength - past - 1);
    if (!transcript.done && steps > 0) {
      const { Tensor } = this.ort;
      const { numLayers, numKvHeads, headDim } = target.kv;
      const rowWidth = numKvHeads * headDim;
      const capacity = Math.ceil((past + steps) / CAPACITY_STEP) * CAPACITY_STEP;
      const dims = [1, capacity, numKvHeads, headDim];
      const fill = (rows: FloatData) => {
        const cache = allocFloatData(target.dtype, capacity * rowWidth);
        cache.set(rows);
        return cache;
      };
      let keys: FloatData[] = decoder.arena.pastKeys().map(fill);
      let values: FloatData[] = decoder.arena.pastValues().map(fill);
      let length = past;
      let remaining = steps;
      const stopTensor = new Tensor('int64', BigInt64Array.from(stopIds, (id) => BigInt(id)), [stopIds.length]);
      while (!transcript.done && remaining > 0) {
        const m = Math.min(chunk, remaining);
        const last = m === remaining;
        const feeds: Record<string, ort.Tensor> = {
          [LOOP_IO.firstToken]: new Tensor('int64', BigInt64Array.of(BigInt(transcript.last)), [1]),
          [LOOP_IO.pastLength]: new Tensor('int64', BigInt64Array.of(BigInt(length)), []),
          [LOOP_IO.maxSteps]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [LOOP_IO.stopIds]: stopTensor,
        };
        if (sampling) {
          feeds[LOOP_IO.temperature] = new Tensor('float32', Float32Array.of(sampling.temperature), []);
          if (sampling.topP < 1) feeds[LOOP_IO.topP] = new Tensor('float32', Float32Array.of(sampling.topP), []);
          feeds[LOOP_IO.uniforms] = new Tensor('float32', Float32Array.from({ length: m }, () => random.uniform()), [m]);
        }
        for (let i = 0; i < numLayers; i++) {
          feeds[LOOP_IO.cacheKey(i)] = new Tensor(target.dtype, keys[i], dims);
          feeds[LOOP_IO.cacheValue(i)] = new Tensor(target.dtype, values[i], dims);
        }
        // The last chunk fetches only the tokens: the caches never leave the device.
        const fetches = last ? [LOOP_IO.tokens] : [LOOP_IO.tokens, LOOP_IO.finalLength, ...Array.from({ length: numLayers }, (_, i) => [LOOP_IO.finalKey(i), LOOP_IO.finalValue(i)]).flat()];
        const inputBytes = byteSize(...Object.values(feeds).map((t) => t.data as BigInt64Array | FloatData));
        const out = await meter.measure('target', 'verify', inputBytes, () => session.run(feeds, fetches), (r) => byteSize(...fetches.map((name) => r[name].data as BigInt64Array | FloatData)));
        const tokens = Array.from(out[LOOP_IO.tokens].data as BigInt64Array, Number);
        for (const token of tokens) transcript.commit([token]);
        remaining -= tokens.length;
        if (!last && tokens.length === m) {
          length = Number((out[LOOP_IO.finalLength].data as BigInt64Array)[0]);
          keys = Array.from({ length: numLayers }, (_, i) => asFloatData(out[LOOP_IO.finalKey(i)].data, target.dtype));
          values = Array.from({ length: numLayers }, (_, i) => asFloatData(out[LOOP_IO.finalValue(i)].data, target.dtype));
        } else if (!transcript.done) {
          throw new Error(`the fused loop stopped after ${tokens.length} of ${m} steps without a stop id`);
        }
      }
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize('vanilla', transcript, meter, performance.now() - started) };
  }
}
