/**
 * The decoding engine's entry point: a Generator binds a method (vanilla, sps, eagle2, fr-spec,
 * ouroboros) and its settings to an opened model folder, then generates from token ids.
 */
import { DECODE_ATTENTIONS, type DecodeAttention } from '../model/fused/gqa-decode.js';
import type { DecoderSession } from '../model/graph-sessions.js';
import { UserError } from '../util/errors.js';
import { decoderGraph, eagleGraph, KvDecoder, ReservedRows, routedDecoderGraph } from './decoder.js';
import { FusedEagle } from './fused/fused-eagle.js';
import { FusedSps } from './fused/fused-sps.js';
import { reservedRowsFor, type FusedEngine } from './fused/fused-run.js';
import { FusedVanilla } from './fused/fused-vanilla.js';
import { RunMeter } from './meter.js';
import { TokenChooser, type MethodContext } from './methods/context.js';
import { runEagle, type TopKHead, type TreeShape } from './methods/eagle.js';
import { runOuroboros } from './methods/ouroboros.js';
import { runSps } from './methods/sps.js';
import { runVanilla } from './methods/vanilla.js';
import type { EngineModel } from './model.js';
import { PhrasePool } from './phrase-pool.js';
import { SeededRandom } from './random.js';
import { checkSampling, GREEDY, isGreedy, type SamplingParams } from './sampling.js';
import { summarize, type GenerationStats } from './stats.js';
import { checkPromptIds, Transcript, type StopReason } from './transcript.js';

export const METHODS = ['vanilla', 'sps', 'eagle2', 'fr-spec', 'ouroboros'] as const;
export type Method = (typeof METHODS)[number];

export const isMethod = (name: string): name is Method => (METHODS as readonly string[]).includes(name);

/** EAGLE-2's Llama-3-8B setting (ARCHITECTURE.md): depth 6, top-k 10, 60 verified tokens. */
/** EAGLE-2's setting for 8B-class targets on a GPU, where verifying 60 tokens costs about as much as one. */
export const DEFAULT_TREE: TreeShape = { depth: 6, topK: 10, tokens: 60 };
/**
 * On the CPU every verified token pays for the full-vocabulary LM head (128k rows), so a 60-token tree costs
 * several decode steps; a small tree is faster there (demo models: 2.5x the tokens/s of 6/10/60 at similar τ).
 */
export const DEFAULT_CPU_TREE: TreeShape = { depth: 4, topK: 4, tokens: 16 };
export const DEFAULT_GAMMA: Record<'sps' | 'ouroboros', number> = { sps: 4, ouroboros: 6 };
/** Spec-Bench's Ouroboros setting: N = 5 (phrases of 4), G = 15, top-k 3. */
export const DEFAULT_PHRASES = { phraseLength: 4, poolCapacity: 15, suffixes: 3 };

export const ENGINES = ['auto', 'host', 'fused'] as const;
export type EngineChoice = (typeof ENGINES)[number];
/** Methods the fused device loop runs (greedy). */
export const FUSED_METHODS: readonly Method[] = ['vanilla', 'eagle2', 'fr-spec', 'sps'];

export interface MethodSettings {
  method: Method;
  /**
   * host: TypeScript drives every graph run (KV caches on the host); fused: the decoding loop inside
   * one ONNX Loop (caches stay on the device; vanilla, eagle2, fr-spec and sps, greedy or sampling);
   * auto (default): fused on CUDA for those methods, host otherwise (ouroboros, the CPU).
   */
  engine?: EngineChoice;
  /** fused: most new tokens per Loop run (the caches come back between runs); default: all in one run. */
  chunk?: number;
  /** fused on CUDA: fail instead of placing a node of the Loop on the CPU (timing checks). */
  strictDevice?: boolean;
  /**
   * Diagnostics (bench/gpu/engines.ts --allow-gqa-on-cuda): run `decodeAttention: 'gqa'` on CUDA despite its
   * measured cost, to time it under onnxruntime settings that may avoid that cost (docs/fused-loop.md).
   */
  allowGqaOnCuda?: boolean;
  /**
   * vanilla's one-token decode steps, on either engine: 'graph' (default) runs the target graph's own
   * attention nodes; 'gqa' one GroupQueryAttention node per layer (src/model/fused/gqa-decode.ts: fewer
   * nodes per step; fused-operator models; on CUDA only with ORT_ENABLE_CUDNN_FLASH_ATTENTION=0, since onnxruntime 1.29's
   * cuDNN path is slow on these graphs, and then no faster than 'graph'). Both engines give the same tokens with either;
   * on fp16 'gqa' may pick other tokens than 'graph' where logits nearly tie (other kernels, other rounding).
   */
  decodeAttention?: DecodeAttention;
  /**
   * vanilla, either engine: decode steps on caches padded to the generation's rows with each step's row written in
   * place (src/model/fused/reserved-cache.ts, reserved-decode.ts), so every step has the same shapes; both engines
   * compute the same thing, so their tokens stay equal. Default: `reservesRowsByDefault` (on CUDA with the graph's
   * attention, where onnxruntime otherwise spends ≈ 1–3 ms in the first attention of every step).
   */
  reserveRows?: boolean;
  /** eagle2 / fr-spec. */
  tree?: Partial<TreeShape>;
  /** sps / ouroboros: drafted tokens per cycle. */
  gamma?: number;
  /** fr-spec: the draft head's vocabulary (e.g. a freq_{r} subset), full-vocabulary ids. */
  vocabSubset?: ArrayLike<number>;
  /** ouroboros. */
  phrases?: Partial<typeof DEFAULT_PHRASES>;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Default greedy. */
  sampling?: SamplingParams;
  seed?: number;
  /** Ids that end the generation (kept as its last token). */
  stopIds?: readonly number[];
  /** Called with each batch of committed tokens, as they are committed. */
  onTokens?: (tokens: readonly number[]) => void;
}

export interface GenerationResult {
  /** The new tokens (a final stop id included). */
  tokens: number[];
  stopReason: StopReason;
  stats: GenerationStats;
}

/**
 * Whether vanilla reserves its cache rows when MethodSettings.reserveRows is not given: on CUDA with the graph's own
 * attention. There onnxruntime spent 2.7 ms of an 8.7 ms Llama-3-8B-shape step in the first attention of every step
 * while the caches grew; with every step's shapes the same, the fused step went from 9.37 to 8.38 ms (H100,
 * docs/fused-loop.md). The CPU has no such cost and would attend over the unused rows.
 */
export function reservesRowsByDefault(ep: string, attention: DecodeAttention): boolean {
  return ep === 'cuda' && attention === 'graph';
}

export class Generator {
  /** Ouroboros' pool lives as long as the generator: phrases carry over between prompts (warm start). */
  private readonly pool?: PhrasePool;

  private constructor(
    readonly model: EngineModel,
    readonly method: Method,
    private readonly tree: TreeShape,
    /** sps / ouroboros: drafted tokens per cycle. */
    readonly gamma: number,
    private readonly suffixes: number,
    private readonly head?: TopKHead,
    phrases?: { phraseLength: number; poolCapacity: number },
    private readonly fused?: FusedEngine,
    private readonly chunk?: number,
    /** `--decode-attention gqa`: the host engine's one-token steps run this session (routedDecoderGraph). */
    private readonly gqaDecode?: DecoderSession,
    /** `--reserve-rows` on the host engine: vanilla's decode steps run on reserved cache rows (routedDecoderGraph). */
    private readonly reserved?: ReservedRows,
    private readonly reserveRows = false,
  ) {
    if (phrases) this.pool = new PhrasePool(phrases.phraseLength, phrases.poolCapacity);
  }

  static async create(model: EngineModel, settings: MethodSettings): Promise<Generator> {
    const { method } = settings;
    if (!isMethod(method)) throw new UserError(`unknown method "${String(method)}"; choose one of ${METHODS.join(', ')}`);
    const tree = withDefaults(model.sessions.ep === 'cuda' ? DEFAULT_TREE : DEFAULT_CPU_TREE, settings.tree);
    const phrases = withDefaults(DEFAULT_PHRASES, settings.phrases);
    const gamma = settings.gamma ?? (method === 'ouroboros' ? DEFAULT_GAMMA.ouroboros : DEFAULT_GAMMA.sps);
    checkPositive({ 'tree depth': tree.depth, 'tree top-k': tree.topK, gamma, 'phrase length': phrases.phraseLength, 'phrase pool size': phrases.poolCapacity, suffixes: phrases.suffixes });
    if (tree.tokens < 2) throw new UserError(`--tree-tokens must be at least 2 (the root and one draft), got ${tree.tokens}`);
    if (settings.vocabSubset && method !== 'fr-spec') throw new UserError(`a vocabulary map applies only to --method fr-spec, not ${method}`);
    checkModelSupports(model, method);
    const { sessions } = model;
    let head: TopKHead | undefined;
    if (method === 'eagle2') head = sessions.head;
    if (method === 'fr-spec') {
      if (!settings.vocabSubset) throw new UserError('--method fr-spec needs a vocabulary map (a freq_{r} subset)');
      head = await sessions.subsetHead(settings.vocabSubset);
    }
    if (head && tree.topK > head.vocabSize) throw new UserError(`--tree-topk ${tree.topK} exceeds the draft head's vocabulary of ${head.vocabSize} tokens`);
    const engine = settings.engine ?? 'auto';
    if (!(ENGINES as readonly string[]).includes(engine)) throw new UserError(`unknown engine "${String(engine)}"; choose one of ${ENGINES.join(', ')}`);
    const fusable = FUSED_METHODS.includes(method);
    if (engine === 'fused' && !fusable) throw new UserError(`--engine fused runs ${FUSED_METHODS.join(', ')}, not ${method}; use --engine host`);
    if (settings.chunk !== undefined && !(Number.isInteger(settings.chunk) && settings.chunk >= 1)) throw new UserError(`--chunk must be a whole number ≥ 1, got ${settings.chunk}`);
    let fused: FusedEngine | undefined;
    const runsFused = engine === 'fused' || (engine === 'auto' && fusable && sessions.ep === 'cuda');
    const attention = settings.decodeAttention ?? 'graph';
    if (!DECODE_ATTENTIONS.includes(attention)) throw new UserError(`unknown decode attention "${String(attention)}"; choose one of ${DECODE_ATTENTIONS.join(', ')}`);
    if (attention === 'gqa') {
      if (method !== 'vanilla') throw new UserError(`--decode-attention gqa applies to --method vanilla (its one-token steps), not ${method}`);
      if (sessions.folder.config.ops !== 'fused') throw new UserError(`--decode-attention gqa needs a model exported with --ops fused; ${sessions.folder.path('config.json')} says ops ${sessions.folder.config.ops ?? 'standard'}`);
      // onnxruntime's GroupQueryAttention kernels: CUDA's take fp16 (and bf16) only, the CPU's a head size that is a multiple of 16.
      // Measured on H100s (docs/fused-loop.md): onnxruntime 1.29's CUDA kernel failed on a past one row shorter than the
      // present; fed a past with room (one row, or reserved rows) it runs, but its first layer of every step takes 23–66 ms
      // in its cuDNN flash-attention path (SM ≥ 90). With that path off it runs as fast as the graph's attention, no faster.
      const cudnnFlashOff = process.env.ORT_ENABLE_CUDNN_FLASH_ATTENTION === '0';
      if (sessions.ep === 'cuda' && !settings.allowGqaOnCuda && !cudnnFlashOff) {
        throw new UserError('--decode-attention gqa on CUDA needs ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 in the environment: otherwise onnxruntime 1.29\'s GroupQueryAttention takes its cuDNN path, which spends 23-66 ms in the first layer of every step (H100); with it off gqa is no faster than --decode-attention graph (8.50 ms per step at Llama-3-8B shape)');
      }
      if (sessions.ep === 'cpu' && sessions.target.kv.headDim % 16 !== 0) throw new UserError(`--decode-attention gqa on the CPU needs a head size that is a multiple of 16 (onnxruntime's CPU GroupQueryAttention); this model's is ${sessions.target.kv.headDim}`);
    }
    if (settings.reserveRows && method !== 'vanilla') throw new UserError(`--reserve-rows applies to --method vanilla, not ${method}`);
    if (settings.reserveRows && attention === 'gqa' && !runsFused) throw new UserError('--reserve-rows with --decode-attention gqa runs on the fused engine only');
    const reserveRows = method === 'vanilla' && (settings.reserveRows ?? reservesRowsByDefault(sessions.ep, attention));
    if (runsFused) {
      const common = { threads: model.threads, profileDir: model.profileDir, strictDevice: settings.strictDevice };
      fused = method === 'vanilla' ? await FusedVanilla.create(model, { ...common, attention, reserveRows })
          : method === 'sps' ? await FusedSps.create(model, { ...common, gamma })
          : await FusedEagle.create(model, { ...common, tree, vocabSubset: settings.vocabSubset });
    }
    const gqaDecode = attention === 'gqa' && !fused ? await model.gqaDecodeSession() : undefined;
    const reserved = reserveRows && !fused ? new ReservedRows(await model.reservedDecodeSession()) : undefined;
    return new Generator(model, method, tree, gamma, phrases.suffixes, head, method === 'ouroboros' ? phrases : undefined, fused, settings.chunk, gqaDecode, reserved, reserveRows);
  }

  /** Whether vanilla's decode steps run on reserved cache rows (MethodSettings.reserveRows, resolved). */
  get reservesRows(): boolean {
    return this.reserveRows;
  }

  /** The engine its generations run on (the fused loops decode greedily and sample). */
  get engine(): 'host' | 'fused' {
    return this.fused ? 'fused' : 'host';
  }

  /** Releases the fused loop's session, if any (the model's sessions belong to the model). */
  async release(): Promise<void> {
    await this.fused?.release();
  }

  /** With profiling on: ends the fused loop sessions' profiling (the model ends its own sessions'). */
  async endProfiling(): Promise<void> {
    await this.fused?.endProfiling();
  }

  get treeShape(): TreeShape {
    return { ...this.tree };
  }

  /** fr-spec: how many ids the draft head scores. */
  get vocabSubsetSize(): number | undefined {
    return this.method === 'fr-spec' ? this.head?.vocabSize : undefined;
  }

  async generate(prompt: readonly number[], options: GenerateOptions): Promise<GenerationResult> {
    const sampling = options.sampling ?? GREEDY;
    checkSampling(sampling);
    if (this.fused) return this.fused.generate(prompt, { ...options, sampling, chunk: this.chunk });
    checkPromptIds(prompt, this.model.config.vocab_size);
    const transcript = new Transcript(prompt, { maxNewTokens: options.maxNewTokens, stopIds: options.stopIds ?? [], contextLength: this.model.contextLength }, options.onTokens);
    // Sampling heads are built once per model, before the clock starts.
    const greedy = isGreedy(sampling);
    const targetLogits = greedy ? undefined : await this.model.targetLogitsHead();
    const draftLogits = greedy || this.method !== 'sps' ? undefined : await this.model.draftLogitsHead();

    const started = performance.now();
    const meter = new RunMeter();
    const random = new SeededRandom(options.seed ?? 0);
    const { sessions } = this.model;
    const ctx: MethodContext = {
      transcript,
      meter,
      random,
      target: new KvDecoder(routedDecoderGraph(sessions.target, this.reserved ?? this.gqaDecode), meter, 'target', 'verify'),
      targetChoice: new TokenChooser(sampling, random, meter, 'verify', targetLogits),
    };
    const draftModel = () => new KvDecoder(decoderGraph(sessions.draft!), meter, 'draft', 'draft');
    switch (this.method) {
      case 'vanilla': {
        // Reserved rows: the rows a reserving vanilla loop holds, the prompt's and every step's (FusedVanilla).
        const reserved = this.reserved;
        const onPromptFed = reserved && ((rows: number) => void (reserved.totalRows = reservedRowsFor(options.maxNewTokens, this.model.contextLength, rows)));
        try {
          await runVanilla(ctx, onPromptFed);
        } finally {
          if (reserved) reserved.totalRows = undefined;
        }
        break;
      }
      case 'eagle2':
      case 'fr-spec':
        await runEagle(ctx, new KvDecoder(eagleGraph(sessions.eagle!), meter, 'draft', 'draft'), this.head!, this.tree);
        break;
      case 'sps':
        await runSps(ctx, draftModel(), new TokenChooser(sampling, random, meter, 'draft', draftLogits), this.gamma);
        break;
      case 'ouroboros':
        await runOuroboros(ctx, draftModel(), this.pool!, { gamma: this.gamma, suffixes: this.suffixes });
        break;
    }
    return { tokens: transcript.generated, stopReason: transcript.stopReason!, stats: summarize(this.method, transcript, meter, performance.now() - started) };
  }
}

/** Refuses a method whose graphs the model folder lacks. */
export function checkModelSupports(model: EngineModel, method: Method): void {
  const { sessions, dir } = model;
  if ((method === 'eagle2' || method === 'fr-spec') && !sessions.eagle) {
    throw new UserError(`${dir} has no EAGLE head (eagle.onnx), which --method ${method} needs; export it with --eagle, or use --method vanilla`);
  }
  if ((method === 'sps' || method === 'ouroboros') && !sessions.draft) {
    throw new UserError(`${dir} has no draft model (draft.onnx), which --method ${method} needs; export it with --draft, or use --method vanilla`);
  }
}

/** `defaults` overridden by the values `given` defines (an undefined value keeps the default). */
function withDefaults<T extends object>(defaults: T, given: Partial<T> | undefined): T {
  const defined = Object.entries(given ?? {}).filter(([, value]) => value !== undefined);
  return { ...defaults, ...Object.fromEntries(defined) };
}

function checkPositive(values: Record<string, number>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isInteger(value) || value < 1) throw new UserError(`${name} must be a whole number ≥ 1, got ${value}`);
  }
}
