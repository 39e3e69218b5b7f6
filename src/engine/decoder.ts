/**
 * A decoder graph (target, plain draft model or EAGLE head) with its host KV cache. `forward` feeds
 * a token tree over the cache — padded to a bucketed batch size, with the tree's attention mask and
 * depth-based positions — and returns the new rows' outputs without touching the cache; the caller
 * then keeps the rows it accepts (`keep`) or rewinds (`truncate`).
 */
import { allocFloatData, type FloatData } from '../model/float-data.js';
import type { DecoderResult, DecoderSession, DecoderStep, EagleSession, ReservedDecoderSession } from '../model/graph-sessions.js';
import type { FloatDType } from '../model/onnx/dtypes.js';
import { buildAttentionBias } from './attention-bias.js';
import { bucketSize } from './buckets.js';
import { KvArena, type KvShape } from './kv-arena.js';
import { stackRows } from './float-rows.js';
import { byteSize, type Phase, type RunKind, type RunMeter } from './meter.js';
import { checkTree, chainTree, positionsOf, type TokenTree } from './token-tree.js';

interface GraphOutput {
  /** [S, d]: `hidden` of a decoder, `out` of an EAGLE head. */
  states: FloatData;
  argmax?: BigInt64Array;
  newKeys: FloatData[];
  newValues: FloatData[];
}

/** The one shape of graph this module drives. */
export interface KvGraph {
  kv: KvShape;
  dtype: FloatDType;
  hiddenSize: number;
  run(step: DecoderStep, feature?: FloatData): Promise<GraphOutput>;
}

export function decoderGraph(session: DecoderSession): KvGraph {
  return { kv: session.kv, dtype: session.dtype, hiddenSize: session.hiddenSize, run: async (step) => graphOutput(await session.run(step)) };
}

const graphOutput = (r: DecoderResult): GraphOutput => ({ states: r.hidden, argmax: r.argmax, newKeys: r.newKeys, newValues: r.newValues });

/** Where a routed decoder sends the one-token steps that see every cached row; `takes` may refuse some of them. */
export interface DecodeRoute {
  run(step: DecoderStep): Promise<DecoderResult>;
  takes?(step: DecoderStep): boolean;
}

/**
 * The target, with its one-token steps over a non-empty cache that see every cached row (vanilla's decode
 * steps, a prompt chunk's lone last token) run by `decode` instead, when given and when it takes them: the
 * GroupQueryAttention decode graph (gqa-decode.ts) or the reserved-rows decode graph (ReservedRows), which
 * compute only such steps. Every other forward (the first, prompt chunks, trees) runs on the target graph; a
 * first forward has no cache, a case GroupQueryAttention treats as a prompt.
 */
export function routedDecoderGraph(target: DecoderSession, decode: DecodeRoute | undefined): KvGraph {
  const viaTarget = decoderGraph(target);
  if (!decode) return viaTarget;
  return { ...viaTarget, run: async (step) => (seesEveryRow(step) && (decode.takes?.(step) ?? true) ? graphOutput(await decode.run(step)) : viaTarget.run(step)) };
}

/** One token over P ≥ 1 cached rows: a [1, P+1] mask, all visible. */
const seesEveryRow = (step: DecoderStep) => step.inputIds.length === 1 && step.attentionBias.length > 1 && step.attentionBias.every((x) => x === 0);

/**
 * Reserved cache rows for the host engine's one-token steps (`--reserve-rows`), as a DecodeRoute: `totalRows` is
 * set once the prompt is in the cache (the rows a reserving vanilla loop would hold: the prompt's rows and every
 * step's); until then, and for a step that would not fit, steps run on the target graph.
 */
export class ReservedRows implements DecodeRoute {
  totalRows?: number;
  constructor(readonly session: ReservedDecoderSession) {}

  takes(step: DecoderStep): boolean {
    return this.totalRows !== undefined && step.attentionBias.length <= this.totalRows;
  }

  run(step: DecoderStep): Promise<DecoderResult> {
    return this.session.runReserved(step, this.totalRows!);
  }
}

export function eagleGraph(session: EagleSession): KvGraph {
  return {
    kv: session.kv,
    dtype: session.dtype,
    hiddenSize: session.hiddenSize,
    run: async (step, feature) => {
      if (!feature) throw new Error('the EAGLE head needs a feature per token');
      const r = await session.run({ ...step, feature });
      return { states: r.out, newKeys: r.newKeys, newValues: r.newValues };
    },
  };
}

export interface ForwardInput {
  tree: TokenTree;
  /** Default: cache length + depth. */
  positions?: readonly number[];
  /** Cache rows every node sees (default: all); see BiasLayout. */
  sharedPast?: number;
  extraPast?: readonly (readonly number[])[];
  /** [nodes, d]: the EAGLE head's input features. */
  feature?: FloatData;
}

export interface ForwardOutput {
  /** Real (unpadded) nodes. */
  nodes: number;
  /** [nodes, d]. */
  states: FloatData;
  /** Greedy next token per node (decoders only). */
  argmax?: BigInt64Array;
  /** Per layer [S, kvH, D] including padded rows. */
  newKeys: FloatData[];
  newValues: FloatData[];
}

export class KvDecoder {
  readonly arena: KvArena;

  constructor(
    private readonly graph: KvGraph,
    private readonly meter: RunMeter,
    private readonly kind: RunKind,
    private readonly phase: Phase,
  ) {
    this.arena = new KvArena(graph.kv, graph.dtype);
  }

  get hiddenSize(): number {
    return this.graph.hiddenSize;
  }

  get dtype(): FloatDType {
    return this.graph.dtype;
  }

  get kv(): KvShape {
    return this.graph.kv;
  }

  /** Cached rows. */
  get length(): number {
    return this.arena.length;
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    const { tree } = input;
    checkTree(tree);
    const nodes = tree.tokens.length;
    const rows = bucketSize(nodes);
    const past = this.arena.length;
    const d = this.graph.hiddenSize;
    const positions = input.positions ?? positionsOf(tree, past);
    const inputIds = new BigInt64Array(rows);
    const positionIds = new BigInt64Array(rows).fill(BigInt(past));
    for (let i = 0; i < nodes; i++) {
      inputIds[i] = BigInt(tree.tokens[i]);
      positionIds[i] = BigInt(positions[i]);
    }
    const attentionBias = buildAttentionBias({ pastLength: past, sharedPast: input.sharedPast, extraPast: input.extraPast, tree, rows });
    let feature: FloatData | undefined;
    if (input.feature) {
      if (input.feature.length !== nodes * d) throw new Error(`feature has ${input.feature.length} values for ${nodes} nodes of width ${d}`);
      feature = allocFloatData(this.graph.dtype, rows * d);
      feature.set(input.feature);
    }
    const pastKeys = this.arena.pastKeys();
    const pastValues = this.arena.pastValues();
    const step: DecoderStep = { inputIds, positionIds, attentionBias, pastKeys, pastValues };
    const inputBytes = byteSize(inputIds, positionIds, attentionBias, feature, ...pastKeys, ...pastValues);
    const out = await this.meter.measure(this.kind, this.phase, inputBytes, () => this.graph.run(step, feature), (r) => byteSize(r.states, r.argmax, ...r.newKeys, ...r.newValues));
    return { nodes, states: out.states.subarray(0, nodes * d), argmax: out.argmax, newKeys: out.newKeys, newValues: out.newValues };
  }

  /** Appends the K/V rows of `nodes` from a forward over the current cache. */
  keep(out: ForwardOutput, nodes: readonly number[]): void {
    this.arena.appendRows(out.newKeys, out.newValues, nodes);
  }

  truncate(length: number): void {
    this.arena.truncate(length);
  }

  /** Row `node` of a forward's states. */
  state(out: ForwardOutput, node: number): FloatData {
    const d = this.graph.hiddenSize;
    return out.states.subarray(node * d, (node + 1) * d);
  }

  /** Gathers rows `nodes` of a forward's states into one [nodes, d] array. */
  gatherStates(out: ForwardOutput, nodes: readonly number[]): FloatData {
    return stackRows(nodes.map((node) => this.state(out, node)), this.graph.dtype, this.graph.hiddenSize);
  }
}

/** Upper bound on rows per forward when feeding a long chain (a prompt), so masks stay small. */
export const CHAIN_CHUNK = 256;

export interface ChainFeed {
  /** The last chunk's forward; its last node is the chain's last token. */
  last: ForwardOutput;
  /** [tokens, d] for the whole chain, when asked for. */
  states?: FloatData;
}

/**
 * Feeds a chain of tokens after the cache (in chunks), keeping every row. `feature` ([tokens, d])
 * goes with them for an EAGLE head.
 */
export async function feedChain(decoder: KvDecoder, tokens: readonly number[], options: { feature?: FloatData; keepStates?: boolean } = {}): Promise<ChainFeed> {
  const d = decoder.hiddenSize;
  const states = options.keepStates ? allocFloatData(decoder.dtype, tokens.length * d) : undefined;
  let last: ForwardOutput | undefined;
  for (let start = 0; start < tokens.length; start += CHAIN_CHUNK) {
    const chunk = tokens.slice(start, start + CHAIN_CHUNK);
    const feature = options.feature?.subarray(start * d, (start + chunk.length) * d);
    last = await decoder.forward({ tree: chainTree(chunk), feature });
    decoder.keep(last, chunk.map((_, i) => i));
    states?.set(last.states, start * d);
  }
  if (!last) throw new Error('cannot feed an empty chain');
  return { last, states };
}
