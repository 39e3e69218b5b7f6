/**
 * Greedy EAGLE-2 / FR-Spec on the fused device loop (src/model/fused/eagle-loop.ts): the host prefills
 * the prompt into the target and the EAGLE head exactly as the host method does, then each `run` of
 * the eagle_loop session performs whole speculative iterations (draft tree, verification, acceptance,
 * both caches updated on the device) until a stop id, the token budget of the run, or the end.
 * Output equals the host engine's eagle2 / fr-spec token for token; τ and cycles are the loop's.
 */
import { readFileSync } from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { asFloatData } from '../../model/float-data.js';
import { buildEagleLoopModel, EAGLE_LOOP_IO, uniformsPerLevel, verifiedTokens, type EagleLoopTree } from '../../model/fused/eagle-loop.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { UserError } from '../../util/errors.js';
import { decoderGraph, eagleGraph, feedChain, KvDecoder } from '../decoder.js';
import type { GenerationResult } from '../engine.js';
import { encodeCommitted, type TreeShape } from '../methods/eagle.js';
import type { EngineModel } from '../model.js';
import { summarize } from '../stats.js';
import { commitLoopBlocks, feedLoopCaches, fetchedLoopCaches, finalLoopCacheNames, FusedEngine, hostLoopCaches, LoopSessions, loopBudget, runLoop, samplingFeeds, startFused, type FusedOptions, type LoopCacheNames, type LoopSessionSettings } from './fused-run.js';

const TARGET_CACHES: LoopCacheNames = { key: EAGLE_LOOP_IO.targetKey, value: EAGLE_LOOP_IO.targetValue, finalKey: EAGLE_LOOP_IO.finalTargetKey, finalValue: EAGLE_LOOP_IO.finalTargetValue };
const EAGLE_CACHES: LoopCacheNames = { key: EAGLE_LOOP_IO.eagleKey, value: EAGLE_LOOP_IO.eagleValue, finalKey: EAGLE_LOOP_IO.finalEagleKey, finalValue: EAGLE_LOOP_IO.finalEagleValue };

export interface FusedEagleSettings extends LoopSessionSettings {
  tree: TreeShape;
  /** FR-Spec: the draft head's vocabulary (full-vocabulary ids); absent for EAGLE-2's full head. */
  vocabSubset?: ArrayLike<number>;
}

export class FusedEagle extends FusedEngine {
  private constructor(
    model: EngineModel,
    ort: Ort,
    sessions: LoopSessions,
    readonly tree: EagleLoopTree,
    readonly method: 'eagle2' | 'fr-spec',
  ) {
    super(model, ort, sessions);
  }

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
      contextLength: model.contextLength,
      vocabSize: config.vocab_size,
      headVocabSize: headVocab,
    };
    const loopSessions = await LoopSessions.create(model, 'eagle_loop', settings, (sampling) => buildEagleLoopModel({ ...graphs, sampling }));
    return new FusedEagle(model, loadOrt(), loopSessions, tree, settings.vocabSubset ? 'fr-spec' : 'eagle2');
  }

  /** Tokens verified per iteration (the root included). */
  get verifiedTokens(): number {
    return verifiedTokens(this.tree);
  }

  async generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> {
    const { sampling, chunk, stopIds, transcript, session, random, meter, targetChoice, started } = await startFused(this.model, this.sessions, prompt, options);
    const { sessions } = this.model;
    const target = new KvDecoder(decoderGraph(sessions.target), meter, 'target', 'verify');
    const eagle = new KvDecoder(eagleGraph(sessions.eagle!), meter, 'draft', 'draft');
    // The prompt on the host, exactly as the host engine's eagle method feeds it.
    const prefill = await feedChain(target, transcript.tokens, { keepStates: true });
    const first = await targetChoice.choose(target, prefill.last, prefill.last.nodes - 1);
    transcript.commit([first], false);
    if (!transcript.done) {
      let rootOut = await encodeCommitted(eagle, [...prompt.slice(1), first], prefill.states!);
      const budget = loopBudget(options.maxNewTokens, this.model.contextLength, target.length);
      const block = this.tree.depth + 1;
      const { Tensor } = this.ort;
      const dtype = target.dtype;
      // Both caches at their exact length: the host's rows first, then each run's final caches.
      let targetCache = hostLoopCaches(this.ort, target);
      let eagleCache = hostLoopCaches(this.ort, eagle);
      let rootToken = transcript.last;
      let remaining = budget;
      const stopTensor = new Tensor('int64', BigInt64Array.from(stopIds, (id) => BigInt(id)), [stopIds.length]);
      while (!transcript.done && remaining > 0) {
        const m = Math.min(chunk, remaining);
        const last = m === remaining;
        const feeds: Record<string, ort.Tensor> = {
          [EAGLE_LOOP_IO.rootToken]: new Tensor('int64', BigInt64Array.of(BigInt(rootToken)), [1]),
          [EAGLE_LOOP_IO.rootOut]: new Tensor(dtype, rootOut, [1, rootOut.length]),
          [EAGLE_LOOP_IO.maxSteps]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [EAGLE_LOOP_IO.maxTokens]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [EAGLE_LOOP_IO.stopIds]: stopTensor,
        };
        if (sampling) Object.assign(feeds, samplingFeeds(this.ort, sampling, random, [m, block, uniformsPerLevel(this.tree)]));
        feedLoopCaches(feeds, targetCache, TARGET_CACHES);
        feedLoopCaches(feeds, eagleCache, EAGLE_CACHES);
        // The last run fetches only the tokens: the caches never leave the device.
        const carried = [EAGLE_LOOP_IO.finalRootToken, EAGLE_LOOP_IO.finalRootOut, ...finalLoopCacheNames(target.kv.numLayers, TARGET_CACHES), ...finalLoopCacheNames(eagle.kv.numLayers, EAGLE_CACHES)];
        const out = await runLoop(meter, session, feeds, [EAGLE_LOOP_IO.blocks, EAGLE_LOOP_IO.counts, ...(last ? [] : carried)]);
        const { iterations, committed } = commitLoopBlocks(transcript, out, EAGLE_LOOP_IO, block);
        // One target forward was counted by runLoop; each iteration also ran depth EAGLE forwards and depth head runs.
        meter.count('target', iterations - 1);
        meter.count('draft', iterations * this.tree.depth);
        meter.count('head', iterations * this.tree.depth);
        remaining -= committed;
        if (transcript.done) break;
        if (last) throw new Error(`the fused loop stopped after ${committed} of ${m} tokens without a stop id`);
        rootToken = Number((out[EAGLE_LOOP_IO.finalRootToken]!.data as BigInt64Array)[0]);
        rootOut = asFloatData(out[EAGLE_LOOP_IO.finalRootOut]!.data, dtype);
        targetCache = fetchedLoopCaches(out, target.kv.numLayers, TARGET_CACHES);
        eagleCache = fetchedLoopCaches(out, eagle.kv.numLayers, EAGLE_CACHES);
      }
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize(this.method, transcript, meter, performance.now() - started) };
  }
}

