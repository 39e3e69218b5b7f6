/**
 * A model folder opened for generation: the contract's sessions (src/model) plus what the engine
 * builds on top of them — full-logits heads for sampling — and the context length.
 */
import { existsSync, statSync } from 'node:fs';
import type * as ort from 'onnxruntime-node';
import { loadOrt, type ExecutionProviderChoice, type Ort } from '../model/ort-runtime.js';
import { endProfiling, ModelSessions, namedSessionOptions, sessionOptions } from '../model/session.js';
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
}

export class EngineModel {
  private targetLogits?: Promise<LogitsHead>;
  private draftLogits?: Promise<LogitsHead>;

  private constructor(
    readonly dir: string,
    readonly sessions: ModelSessions,
    private readonly ort: Ort,
    private readonly options: ort.InferenceSession.SessionOptions,
    readonly contextLength: number,
    /** What the model was opened with: sessions built later (fused loops) use the same. */
    readonly threads?: number,
    readonly profileDir?: string,
  ) {}

  static async open(dir: string, options: EngineModelOptions = {}): Promise<EngineModel> {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`model folder ${dir} not found`);
    const sessions = await ModelSessions.open(dir, { ep: options.ep ?? 'auto', threads: options.threads, profileDir: options.profileDir });
    const contextLength = options.contextLength ?? sessions.folder.config.target.architecture.max_position_embeddings ?? DEFAULT_CONTEXT_LENGTH;
    return new EngineModel(dir, sessions, loadOrt(), sessionOptions(sessions.ep, { threads: options.threads, profileDir: options.profileDir }), contextLength, options.threads, options.profileDir);
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

  /** With profiling on: ends it on every session the model has opened, which writes their trace files. */
  async endProfiling(): Promise<void> {
    const heads = await Promise.allSettled([this.targetLogits, this.draftLogits].filter((h) => h !== undefined));
    endProfiling(this.options, heads.map((h) => (h.status === 'fulfilled' ? h.value.session : undefined)));
    await this.sessions.endProfiling();
  }

  async release(): Promise<void> {
    const heads = await Promise.allSettled([this.targetLogits, this.draftLogits].filter((h) => h !== undefined));
    await Promise.all(heads.map((h) => (h.status === 'fulfilled' ? h.value.release() : undefined)));
    await this.sessions.release();
  }
}
