/**
 * Vanilla decoding (greedy or sampled) on the fused device loop (src/model/fused/vanilla-loop.ts): the host
 * prefills the prompt with the target graph, as the host engine does, then each `run` of the
 * vanilla_loop session decodes up to `chunk` tokens with the KV cache carried inside the Loop.
 * Between chunks the final caches come back and are fed again; with one chunk (the default) only
 * the generated tokens come back. Output equals the host engine's vanilla method token for token.
 */
import type * as ort from 'onnxruntime-node';
import type { DecodeAttention } from '../../model/fused/gqa-decode.js';
import { readFileSync } from 'node:fs';
import { buildVanillaLoopModel, LOOP_IO, reservedRowsLayout, reservePads } from '../../model/fused/vanilla-loop.js';
import type { DecoderSession } from '../../model/graph-sessions.js';
import { loadOrt, type Ort } from '../../model/ort-runtime.js';
import { decodeModel } from '../../model/onnx/proto.js';
import { feedChain, KvDecoder, routedDecoderGraph } from '../decoder.js';
import type { GenerationResult } from '../engine.js';
import type { EngineModel } from '../model.js';
import { summarize } from '../stats.js';
import { cacheTensor, FusedEngine, LoopSessions, loopBudget, reservedRowsFor, runLoop, samplingFeeds, startFused, type FusedOptions, type LoopSessionSettings } from './fused-run.js';

export class FusedVanilla extends FusedEngine {
  private constructor(
    model: EngineModel,
    ortModule: Ort,
    sessions: LoopSessions,
    /** `attention: 'gqa'`: the prefill's one-token steps run this session, as the host engine's do. */
    private readonly gqaDecode?: DecoderSession,
    /** Reserved cache rows (options.reserveRows): the carried caches' rank and row axis. */
    private readonly reserved?: { rank: number; rowAxis: number },
  ) {
    super(model, ortModule, sessions);
  }

  /**
   * `attention`: the Loop's attention nodes; `reserveRows`: carry the caches padded to the rows a run can
   * reach (vanilla-loop.ts VanillaLoopOptions; defaults 'graph' and false).
   */
  static async create(model: EngineModel, options: LoopSessionSettings & { attention?: DecodeAttention; reserveRows?: boolean } = {}): Promise<FusedVanilla> {
    const { sessions } = model;
    const { target } = sessions;
    const kv = { ...target.kv, dtype: target.dtype };
    const exported = decodeModel(readFileSync(sessions.folder.path(sessions.folder.config.target.file)));
    const loop = { attention: options.attention, reserveRows: options.reserveRows, maxPositions: model.contextLength, vocabSize: sessions.folder.config.vocab_size };
    const loopSessions = await LoopSessions.create(model, 'vanilla_loop', options, (sampling) => buildVanillaLoopModel(exported, kv, { ...loop, sampling }));
    // The prompt goes through the host as the host engine feeds it, with the same graphs (a lone last token included).
    const gqaDecode = options.attention === 'gqa' ? await model.gqaDecodeSession() : undefined;
    return new FusedVanilla(model, loadOrt(), loopSessions, gqaDecode, options.reserveRows ? reservedRowsLayout(exported, options.attention) : undefined);
  }

  async generate(prompt: readonly number[], options: FusedOptions): Promise<GenerationResult> {
    const { sampling, chunk, stopIds, transcript, session, random, meter, targetChoice, started } = await startFused(this.model, this.sessions, prompt, options);
    const { target } = this.model.sessions;
    // The prompt on the host, exactly as the host engine's vanilla method feeds it.
    const decoder = new KvDecoder(routedDecoderGraph(target, this.gqaDecode), meter, 'target', 'verify');
    const fed = await feedChain(decoder, transcript.tokens);
    transcript.commit([await targetChoice.choose(decoder, fed.last, fed.last.nodes - 1)], false);

    // Each step appends one row; the transcript stops by itself at max-new-tokens / context length.
    const steps = loopBudget(options.maxNewTokens, this.model.contextLength, decoder.length);
    const decoded = decoder.length;
    const reservedRows = reservedRowsFor(options.maxNewTokens, this.model.contextLength, decoded);
    if (!transcript.done && steps > 0) {
      const { Tensor } = this.ort;
      const { numLayers } = target.kv;
      // The caches at their exact length: the host's rows first, then each run's final caches.
      let keys = decoder.arena.pastKeys().map((data) => cacheTensor(this.ort, target.dtype, data, target.kv));
      let values = decoder.arena.pastValues().map((data) => cacheTensor(this.ort, target.dtype, data, target.kv));
      let remaining = steps;
      const stopTensor = new Tensor('int64', BigInt64Array.from(stopIds, (id) => BigInt(id)), [stopIds.length]);
      while (!transcript.done && remaining > 0) {
        const m = Math.min(chunk, remaining);
        const last = m === remaining;
        const feeds: Record<string, ort.Tensor> = {
          [LOOP_IO.firstToken]: new Tensor('int64', BigInt64Array.of(BigInt(transcript.last)), [1]),
          [LOOP_IO.maxSteps]: new Tensor('int64', BigInt64Array.of(BigInt(m)), []),
          [LOOP_IO.stopIds]: stopTensor,
        };
        if (sampling) Object.assign(feeds, samplingFeeds(this.ort, sampling, random, [m]));
        if (this.reserved) {
          // R rows for the whole generation, so every chunk runs on the same shapes: the host's caches are padded
          // to R once, and each chunk's final caches (R rows) are fed back as they are.
          feeds[LOOP_IO.cachedRows] = new Tensor('int64', BigInt64Array.of(BigInt(decoded + steps - remaining)), [1]);
          feeds[LOOP_IO.reservePads] = new Tensor('int64', BigInt64Array.from(reservePads(this.reserved, reservedRows - keys[0]!.dims[1]!)), [2 * this.reserved.rank]);
          feeds[LOOP_IO.reservedRowIds] = new Tensor('int64', BigInt64Array.from({ length: reservedRows }, (_, i) => BigInt(i)), [reservedRows]);
        }
        for (let i = 0; i < numLayers; i++) {
          feeds[LOOP_IO.cacheKey(i)] = keys[i];
          feeds[LOOP_IO.cacheValue(i)] = values[i];
        }
        // The last chunk fetches only the tokens: the caches never leave the device.
        const fetches = last ? [LOOP_IO.tokens] : [LOOP_IO.tokens, ...Array.from({ length: numLayers }, (_, i) => [LOOP_IO.finalKey(i), LOOP_IO.finalValue(i)]).flat()];
        const out = await runLoop(meter, session, feeds, fetches);
        const tokens = Array.from(out[LOOP_IO.tokens].data as BigInt64Array, Number);
        for (const token of tokens) transcript.commit([token]);
        remaining -= tokens.length;
        if (!last && tokens.length === m) {
          keys = Array.from({ length: numLayers }, (_, i) => out[LOOP_IO.finalKey(i)]);
          values = Array.from({ length: numLayers }, (_, i) => out[LOOP_IO.finalValue(i)]);
        } else if (!transcript.done) {
          throw new Error(`the fused loop stopped after ${tokens.length} of ${m} steps without a stop id`);
        }
      }
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize('vanilla', transcript, meter, performance.now() - started) };
  }
}
