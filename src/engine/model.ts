/**
 * A model folder opened for generation: the contract's sessions (src/model) plus what the engine
 * builds on top of them — full-logits heads for sampling — and the context length.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { buildGqaDecodeModel } from '../model/fused/gqa-decode.js';
import { buildReservedDecodeModel } from '../model/fused/reserved-decode.js';
import { reservedRowsLayout } from '../model/fused/vanilla-loop.js';
import { createSessionFromModel } from '../model/fused/loop-session.js';
import { DecoderSession, ReservedDecoderSession } from '../model/graph-sessions.js';
import type { FloatDType } from '../model/onnx/dtypes.js';
import { decodeModel, type ModelProto } from '../model/onnx/proto.js';
import { loadOrt, type ExecutionProviderChoice, type Ort } from '../model/ort-runtime.js';
import { endProfiling, ModelSessions, namedSessionOptions, sessionOptions, type SessionTuning } from '../model/session.js';
import { UserError } from '../util/errors.js';
import { LogitsHead } from './logits-head.js';

/** Used when the folder's config does not record the target's max_position_embeddings. */
export const DEFAULT_CONTEXT_LENGTH = 8192;

export interface EngineModelOptions {
  ep?: ExecutionProviderChoice;
  /** Intra-op threads on the CPU provider. */
  threads?: number;
  /** Overrides the context length. */
  contextLength?: number;
  /** onnxruntime session profiling into this folder, for every session the model opens (see src/engine/profile.ts). */
  profileDir?: string;
  /** onnxruntime settings for every session the model opens, fused loops included (benchmark diagnostics). */
  tuning?: SessionTuning;
}

export class EngineModel {
  private targetLogits?: Promise<LogitsHead>;
  private draftLogits?: Promise<LogitsHead>;
  private gqaDecode?: Promise<DecoderSession>;
  private reservedDecode?: Promise<ReservedDecoderSession>;

  private constructor(
    readonly dir: string,
    readonly sessions: ModelSessions,
    private readonly ort: Ort,
    private readonly options: ort.InferenceSession.SessionOptions,
    readonly contextLength: number,
    /** What the model was opened with: sessions built later (fused loops) use the same. */
    readonly threads?: number,
    readonly profileDir?: string,
    readonly tuning?: SessionTuning,
  ) {}

  static async open(dir: string, options: EngineModelOptions = {}): Promise<EngineModel> {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`model folder ${dir} not found`);
    const sessions = await ModelSessions.open(dir, { ep: options.ep ?? 'auto', threads: options.threads, profileDir: options.profileDir, tuning: options.tuning });
    const contextLength = options.contextLength ?? sessions.folder.config.target.architecture.max_position_embeddings ?? DEFAULT_CONTEXT_LENGTH;
    const opened = { threads: options.threads, profileDir: options.profileDir, tuning: options.tuning };
    return new EngineModel(dir, sessions, loadOrt(), sessionOptions(sessions.ep, opened), contextLength, options.threads, options.profileDir, options.tuning);
  }

  get config() {
    return this.sessions.folder.config;
  }

  /** The target's LM head as full logits (sampling verification). */
  targetLogitsHead(): Promise<LogitsHead> {
    this.targetLogits ??= LogitsHead.create(this.ort, namedSessionOptions(this.options, 'target_logits'), this.sessions.folder, 'target');
    return this.targetLogits;
  }

  /** The draft model's LM head as full logits (SpS sampling needs the draft's q). */
  draftLogitsHead(): Promise<LogitsHead> {
    this.draftLogits ??= LogitsHead.create(this.ort, namedSessionOptions(this.options, 'draft_logits'), this.sessions.folder, 'draft');
    return this.draftLogits;
  }

  /**
   * The target's one-token decode steps with one GroupQueryAttention per layer (`--decode-attention gqa`;
   * gqa-decode.ts buildGqaDecodeModel), RoPE tables for the context length. Built on first use.
   */
  gqaDecodeSession(): Promise<DecoderSession> {
    this.gqaDecode ??= this.targetVariant('target_gqa_decode', (exported, kv) => buildGqaDecodeModel(exported, kv, this.contextLength), (session) => {
      const { target } = this.sessions;
      return new DecoderSession(this.ort, session, target.kv, target.dtype, target.hiddenSize);
    });
    return this.gqaDecode;
  }

  /** The target's one-token decode steps with reserved cache rows (src/model/fused/reserved-decode.ts), built once. */
  reservedDecodeSession(): Promise<ReservedDecoderSession> {
    const { folder } = this.sessions;
    this.reservedDecode ??= this.targetVariant('target_reserved_decode', (exported, kv) => buildReservedDecodeModel(exported, kv, folder.config.vocab_size), (session, exported) => {
      const { target } = this.sessions;
      return new ReservedDecoderSession(this.ort, session, target.kv, target.dtype, target.hiddenSize, reservedRowsLayout(exported));
    });
    return this.reservedDecode;
  }

  /** A session of a graph built from target.onnx (`build`), loaded with the folder's weights and named `name` in profiles. */
  private async targetVariant<T>(
    name: string,
    build: (exported: ModelProto, kv: { numLayers: number; numKvHeads: number; headDim: number; dtype: FloatDType }) => ModelProto,
    wrap: (session: ort.InferenceSession, exported: ModelProto) => T,
  ): Promise<T> {
    const { target, folder } = this.sessions;
    const path = folder.path(folder.config.target.file);
    const exported = decodeModel(readFileSync(path));
    const session = await createSessionFromModel(this.ort, build(exported, { ...target.kv, dtype: target.dtype }), dirname(path), namedSessionOptions(this.options, name));
    return wrap(session, exported);
  }

  /** With profiling on: ends it on every session the model has opened, which writes their trace files. */
  async endProfiling(): Promise<void> {
    const built = await Promise.allSettled([this.targetLogits, this.draftLogits, this.gqaDecode, this.reservedDecode].filter((h) => h !== undefined));
    endProfiling(this.options, built.map((h) => (h.status === 'fulfilled' ? h.value.session : undefined)));
    await this.sessions.endProfiling();
  }

  async release(): Promise<void> {
    const built = await Promise.allSettled([this.targetLogits, this.draftLogits, this.gqaDecode, this.reservedDecode].filter((h) => h !== undefined));
    await Promise.all(built.map((h) => (h.status === 'fulfilled' ? h.value.release() : undefined)));
    await this.sessions.release();
  }
}
