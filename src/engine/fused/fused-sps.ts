/**
 * SpS (draft-model speculative sampling) on the fused device loop (src/model/fused/sps-loop.ts): the host
 * prefills the prompt into the target exactly as the host method does and feeds the draft every full chain
 * chunk of the prompt; each `run` of the sps_loop session then performs whole cycles (the draft's γ
 * forwards, the target's verification, acceptance, both caches updated on the device) until a stop id,
 * the token budget of the run, or the end. Greedy output equals the host engine's sps token for token,
 * cycle for cycle; sampling keeps the target's distribution (its uniforms are not the host's draws).
 */
import { readFileSync } from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { buildSpsLoopModel, SPS_LOOP_IO, spsUniformsPerCycle } from '../../model/fused/sps-loop.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { UserError } from '../../util/errors.js';
import { CHAIN_CHUNK, decoderGraph, feedChain, KvDecoder } from '../decoder.js';
import type { GenerationResult } from '../engine.js';
import type { EngineModel } from '../model.js';
import { summarize } from '../stats.js';
import { commitLoopBlocks, feedLoopCaches, fetchedLoopCaches, finalLoopCacheNames, FusedEngine, hostLoopCaches, LoopSessions, loopBudget, runLoop, samplingFeeds, startFused, type FusedOptions, type LoopCacheNames, type LoopSessionSettings } from './fused-run.js';

const TARGET_CACHES: LoopCacheNames = { key: SPS_LOOP_IO.targetKey, value: SPS_LOOP_IO.targetValue, finalKey: SPS_LOOP_IO.finalTargetKey, finalValue: SPS_LOOP_IO.finalTargetValue };
const DRAFT_CACHES: LoopCacheNames = { key: SPS_LOOP_IO.draftKey, value: SPS_LOOP_IO.draftValue, finalKey: SPS_LOOP_IO.finalDraftKey, finalValue: SPS_LOOP_IO.finalDraftValue };

export interface FusedSpsSettings extends LoopSessionSettings {
  /** Drafts per cycle. */
  gamma: number;
}

export class FusedSps extends FusedEngine {
  private constructor(
    model: EngineModel,
    ort: Ort,
    sessions: LoopSessions,
    readonly gamma: number,
  ) {
    super(model, ort, sessions);
  }

  static async create(model: EngineModel, settings: FusedSpsSettings): Promise<FusedSps> {
    const { sessions } = model;
    const { folder, target, draft } = sessions;
    if (!draft) throw new UserError(`${model.dir} has no draft model (draft.onnx), which the fused sps loop needs`);
    const config = folder.config;
    const graphs = {
      target: decodeModel(readFileSync(folder.path(config.target.file))),
      draft: decodeModel(readFileSync(folder.path(config.draft!.file))),
      targetKv: { ...target.kv, dtype: target.dtype },
      draftKv: { ...draft.kv, dtype: draft.dtype },
      gamma: settings.gamma,
      maxPending: CHAIN_CHUNK,
      contextLength: model.contextLength,
      vocabSize: config.vocab_size,
      draftVocabSize: config.draft!.architecture.vocab_size,
    };
    const loopSessions = await LoopSessions.create(model, 'sps_loop', settings, (sampling) => buildSpsLoopModel({ ...graphs, sampling }));
    return new FusedSps(model, loadOrt(), loopSessions, settings.gamma);
  }

  async generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> {
    const { sampling, chunk, stopIds, transcript, session, random, meter, targetChoice, started } = await startFused(this.model, this.sessions, prompt, options);
    const { sessions } = this.model;
    const target = new KvDecoder(decoderGraph(sessions.target), meter, 'target', 'verify');
    const draft = new KvDecoder(decoderGraph(sessions.draft!), meter, 'draft', 'draft');
    // The prompt on the host, exactly as the host engine's sps method feeds it.
    const prefill = await feedChain(target, transcript.tokens);
    transcript.commit([await targetChoice.choose(target, prefill.last, prefill.last.nodes - 1)], false);
    if (!transcript.done) {
      // The host method's first cycle feeds the draft every committed token in chain chunks: the full
      // chunks here, the last one (ending with the newest token) as the loop's first pending tokens.
      const tokens = transcript.tokens;
      const lastChunkStart = Math.floor((tokens.length - 1) / CHAIN_CHUNK) * CHAIN_CHUNK;
      if (lastChunkStart > 0) await feedChain(draft, tokens.slice(0, lastChunkStart));
      let pending = tokens.slice(lastChunkStart);
      const { Tensor } = this.ort;
      let targetCache = hostLoopCaches(this.ort, target);
      let draftCache = hostLoopCaches(this.ort, draft);
      let remaining = loopBudget(options.maxNewTokens, this.model.contextLength, target.length);
      const stopTensor = new Tensor('int64', BigInt64Array.from(stopIds, (id) => BigInt(id)), [stopIds.length]);
      while (!transcript.done && remaining > 0) {
        const m = Math.min(chunk, remaining);
        const last = m === remaining;
        const feeds: Record<string, ort.Tensor> = {
          [SPS_LOOP_IO.pending]: new Tensor('int64', BigInt64Array.from(pending, (id) => BigInt(id)), [pending.length]),
          [SPS_LOOP_IO.maxSteps]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [SPS_LOOP_IO.maxTokens]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [SPS_LOOP_IO.stopIds]: stopTensor,
        };
        if (sampling) Object.assign(feeds, samplingFeeds(this.ort, sampling, random, [m, spsUniformsPerCycle(this.gamma)]));
        feedLoopCaches(feeds, targetCache, TARGET_CACHES);
        feedLoopCaches(feeds, draftCache, DRAFT_CACHES);
        // The last run fetches only the tokens: the caches never leave the device.
        const carried = [SPS_LOOP_IO.finalPending, ...finalLoopCacheNames(target.kv.numLayers, TARGET_CACHES), ...finalLoopCacheNames(draft.kv.numLayers, DRAFT_CACHES)];
        const out = await runLoop(meter, session, feeds, [SPS_LOOP_IO.blocks, SPS_LOOP_IO.counts, ...(last ? [] : carried)]);
        const { iterations, committed } = commitLoopBlocks(transcript, out, SPS_LOOP_IO, this.gamma + 1);
        // One target forward was counted by runLoop; each cycle also ran γ draft forwards.
        meter.count('target', iterations - 1);
        meter.count('draft', iterations * this.gamma);
        remaining -= committed;
        if (transcript.done) break;
        if (last) throw new Error(`the fused loop stopped after ${committed} of ${m} tokens without a stop id`);
        pending = Array.from(out[SPS_LOOP_IO.finalPending]!.data as BigInt64Array, Number);
        targetCache = fetchedLoopCaches(out, target.kv.numLayers, TARGET_CACHES);
        draftCache = fetchedLoopCaches(out, draft.kv.numLayers, DRAFT_CACHES);
      }
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize('sps', transcript, meter, performance.now() - started) };
  }
}
