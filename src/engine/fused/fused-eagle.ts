/**
 * Greedy EAGLE-2 / FR-Spec on the fused device loop (src/model/fused/eagle-loop.ts): the host prefills
 * the prompt into the target and the EAGLE head exactly as the host method does, then each `run` of
 * the eagle_loop session performs whole speculative iterations (draft tree, verification, acceptance,
 * both caches updated on the device) until a stop id, the token budget of the run, or the end.
 * Output equals the host engine's eagle2 / fr-spec token for token; τ and cycles are the loop's.
 */
import { readFileSync } from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { allocFloatData, asFloatData, type FloatData } from '../../model/float-data.js';
import { buildEagleLoopModel, EAGLE_LOOP_IO, uniformsPerLevel, verifiedTokens, type EagleLoopTree } from '../../model/fused/eagle-loop.js';
import { createSessionFromModel } from '../../model/fused/loop-session.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { namedSessionOptions, sessionOptions } from '../../model/session.js';
import { UserError } from '../../util/errors.js';
import { decoderGraph, eagleGraph, feedChain, KvDecoder } from '../decoder.js';
import type { GenerationResult } from '../engine.js';
import { byteSize, RunMeter } from '../meter.js';
import { encodeCommitted, type TreeShape } from '../methods/eagle.js';
import type { EngineModel } from '../model.js';
import { SeededRandom } from '../random.js';
import { distributionFromLogits, isGreedy, sampleFrom, type SamplingParams } from '../sampling.js';
import { summarize } from '../stats.js';
import { Transcript } from '../transcript.js';
import { CAPACITY_STEP, type FusedOptions, type SamplingVariant } from './fused-vanilla.js';

export interface FusedEagleSettings {
  tree: TreeShape;
  /** FR-Spec: the draft head's vocabulary (full-vocabulary ids); absent for EAGLE-2's full head. */
  vocabSubset?: ArrayLike<number>;
  threads?: number;
  strictDevice?: boolean;
  profileDir?: string;
}

export class FusedEagle {
  private readonly samplingSessions = new Map<SamplingVariant, Promise<ort.InferenceSession>>();

  private constructor(
    readonly model: EngineModel,
    private readonly ort: Ort,
    readonly session: ort.InferenceSession,
    readonly tree: EagleLoopTree,
    readonly method: 'eagle2' | 'fr-spec',
    private readonly profiling: boolean,
    /** Builds a sampling variant of the loop on first use. */
    private readonly createSampling: (variant: SamplingVariant) => Promise<ort.InferenceSession>,
  ) {}

  static async create(model: EngineModel, settings: FusedEagleSettings): Promise<FusedEagle> {
    const { sessions } = model;
    const { folder, target, eagle } = sessions;
    if (!eagle) throw new UserError(`${model.dir} has no EAGLE head (eagle.onnx), which the fused eagle loop needs`);
    const config = folder.config;
    const head = settings.vocabSubset ? sessions.subsetHeadGraph(settings.vocabSubset).toModel() : decodeModel(readFileSync(folder.path(config.lm_head.file)));
    const headVocab = settings.vocabSubset ? settings.vocabSubset.length : config.lm_head.vocab_size;
    const tree: EagleLoopTree = { ...settings.tree, topK: Math.min(settings.tree.topK, headVocab) };
    const graphs = {
      target: decodeModel(readFileSync(folder.path(config.target.file))),
      eagle: decodeModel(readFileSync(folder.path(config.eagle!.file))),
      head,
      targetKv: { ...target.kv, dtype: target.dtype },
      eagleKv: { ...eagle.kv, dtype: eagle.dtype },
      hiddenSize: config.hidden_size,
      tree,
    };
    const ortModule = loadOrt();
    const options = (name: string) => namedSessionOptions(sessionOptions(sessions.ep, { threads: settings.threads, strictDevice: settings.strictDevice, profileDir: settings.profileDir }), name);
    const session = await createSessionFromModel(ortModule, buildEagleLoopModel(graphs), folder.dir, options('eagle_loop'));
    const createSampling = (variant: SamplingVariant) => createSessionFromModel(ortModule, buildEagleLoopModel({ ...graphs, sampling: variant }), folder.dir, options(`eagle_loop_${variant}_sampling`));
    return new FusedEagle(model, ortModule, session, tree, settings.vocabSubset ? 'fr-spec' : 'eagle2', settings.profileDir !== undefined, createSampling);
  }

  /** Tokens verified per iteration (the root included). */
  get verifiedTokens(): number {
    return verifiedTokens(this.tree);
  }

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
    checkSamplingParams(sampling);
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
    const { sessions } = this.model;
    const target = new KvDecoder(decoderGraph(sessions.target), meter, 'target', 'verify');
    const eagle = new KvDecoder(eagleGraph(sessions.eagle!), meter, 'draft', 'draft');
    // The prompt on the host, exactly as the host engine's eagle method feeds it.
    const prefill = await feedChain(target, transcript.tokens, { keepStates: true });
    const first = logitsHead
      ? sampleFrom(distributionFromLogits(await logitsHead.logits(target.state(prefill.last, prefill.last.nodes - 1), meter, 'verify'), sampling!), random.uniform())
      : Number(prefill.last.argmax![prefill.last.nodes - 1]);
    transcript.commit([first], false);
    if (!transcript.done) {
      let rootOut = await encodeCommitted(eagle, [...prompt.slice(1), first], prefill.states!);
      const past = target.length;
      const budget = Math.min(options.maxNewTokens - 1, contextLength - past - 1);
      const block = this.tree.depth + 1;
      const capacity = Math.ceil((past + budget + block) / CAPACITY_STEP) * CAPACITY_STEP;
      const { Tensor } = this.ort;
      const pad = (decoder: KvDecoder) => {
        const rowWidth = decoder.kv.numKvHeads * decoder.kv.headDim;
        const fill = (rows: FloatData) => {
          const cache = allocFloatData(decoder.dtype, capacity * rowWidth);
          cache.set(rows);
          return cache;
        };
        return { keys: decoder.arena.pastKeys().map(fill), values: decoder.arena.pastValues().map(fill) };
      };
      let targetCache = pad(target);
      let eagleCache = pad(eagle);
      let length = past;
      let rootToken = transcript.last;
      let remaining = budget;
      const stopTensor = new Tensor('int64', BigInt64Array.from(stopIds, (id) => BigInt(id)), [stopIds.length]);
      const targetKv = target.kv;
      const eagleKv = eagle.kv;
      const dtype = target.dtype;
      while (!transcript.done && remaining > 0) {
        const m = Math.min(chunk, remaining);
        const last = m === remaining;
        const feeds: Record<string, ort.Tensor> = {
          [EAGLE_LOOP_IO.rootToken]: new Tensor('int64', BigInt64Array.of(BigInt(rootToken)), [1]),
          [EAGLE_LOOP_IO.rootOut]: new Tensor(dtype, rootOut, [1, rootOut.length]),
          [EAGLE_LOOP_IO.pastLength]: new Tensor('int64', BigInt64Array.of(BigInt(length)), []),
          [EAGLE_LOOP_IO.maxSteps]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [EAGLE_LOOP_IO.maxTokens]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [EAGLE_LOOP_IO.stopIds]: stopTensor,
        };
        if (sampling) {
          const perLevel = uniformsPerLevel(this.tree);
          const uniforms = Float32Array.from({ length: m * block * perLevel }, () => random.uniform());
          feeds[EAGLE_LOOP_IO.temperature] = new Tensor('float32', Float32Array.of(sampling.temperature), []);
          if (sampling.topP < 1) feeds[EAGLE_LOOP_IO.topP] = new Tensor('float32', Float32Array.of(sampling.topP), []);
          feeds[EAGLE_LOOP_IO.uniforms] = new Tensor('float32', uniforms, [m, block, perLevel]);
        }
        const dims = (kv: { numKvHeads: number; headDim: number }) => [1, capacity, kv.numKvHeads, kv.headDim];
        for (let i = 0; i < targetKv.numLayers; i++) {
          feeds[EAGLE_LOOP_IO.targetKey(i)] = new Tensor(dtype, targetCache.keys[i], dims(targetKv));
          feeds[EAGLE_LOOP_IO.targetValue(i)] = new Tensor(dtype, targetCache.values[i], dims(targetKv));
        }
        for (let j = 0; j < eagleKv.numLayers; j++) {
          feeds[EAGLE_LOOP_IO.eagleKey(j)] = new Tensor(dtype, eagleCache.keys[j], dims(eagleKv));
          feeds[EAGLE_LOOP_IO.eagleValue(j)] = new Tensor(dtype, eagleCache.values[j], dims(eagleKv));
        }
        // The last run fetches only the tokens: the caches never leave the device.
        const carried = [
          EAGLE_LOOP_IO.finalRootToken,
          EAGLE_LOOP_IO.finalRootOut,
          EAGLE_LOOP_IO.finalLength,
          ...Array.from({ length: targetKv.numLayers }, (_, i) => [EAGLE_LOOP_IO.finalTargetKey(i), EAGLE_LOOP_IO.finalTargetValue(i)]).flat(),
          ...Array.from({ length: eagleKv.numLayers }, (_, j) => [EAGLE_LOOP_IO.finalEagleKey(j), EAGLE_LOOP_IO.finalEagleValue(j)]).flat(),
        ];
        const fetches = [EAGLE_LOOP_IO.blocks, EAGLE_LOOP_IO.counts, ...(last ? [] : carried)];
        const inputBytes = byteSize(...Object.values(feeds).map((t) => t.data as BigInt64Array | FloatData));
        const out = await meter.measure('target', 'verify', inputBytes, () => session.run(feeds, fetches), (r) => byteSize(...fetches.map((name) => r[name].data as BigInt64Array | FloatData)));
        const counts = Array.from(out[EAGLE_LOOP_IO.counts].data as BigInt64Array, Number);
        const blocks = out[EAGLE_LOOP_IO.blocks].data as BigInt64Array;
        // One target forward was counted by measure(); each iteration also ran depth EAGLE forwards and depth head runs.
        meter.count('target', counts.length - 1);
        meter.count('draft', counts.length * this.tree.depth);
        meter.count('head', counts.length * this.tree.depth);
        let committed = 0;
        counts.forEach((count, iteration) => {
          const tokens = Array.from(blocks.subarray(iteration * block, iteration * block + count), Number);
          transcript.commit(tokens);
          committed += count;
        });
        remaining -= committed;
        if (transcript.done) break;
        if (last) throw new Error(`the fused loop stopped after ${committed} of ${m} tokens without a stop id`);
        rootToken = Number((out[EAGLE_LOOP_IO.finalRootToken].data as BigInt64Array)[0]);
        rootOut = asFloatData(out[EAGLE_LOOP_IO.finalRootOut].data, dtype);
        length = Number((out[EAGLE_LOOP_IO.finalLength].data as BigInt64Array)[0]);
        targetCache = {
          keys: Array.from({ length: targetKv.numLayers }, (_, i) => asFloatData(out[EAGLE_LOOP_IO.finalTargetKey(i)].data, dtype)),
          values: Array.from({ length: targetKv.numLayers }, (_, i) => asFloatData(out[EAGLE_LOOP_IO.finalTargetValue(i)].data, dtype)),
        };
        eagleCache = {
          keys: Array.from({ length: eagleKv.numLayers }, (_, j) => asFloatData(out[EAGLE_LOOP_IO.finalEagleKey(j)].data, dtype)),
          values: Array.from({ length: eagleKv.numLayers }, (_, j) => asFloatData(out[EAGLE_LOOP_IO.finalEagleValue(j)].data, dtype)),
        };
      }
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize(this.method, transcript, meter, performance.now() - started) };
  }
}

function checkSamplingParams(sampling: SamplingParams | undefined): void {
  if (sampling && !(Number.isFinite(sampling.temperature) && sampling.temperature > 0)) throw new UserError(`temperature must be a finite number > 0, got ${sampling.temperature}`);
}
