/**
 * Typed runners over the contract's graphs: they build the feeds (shapes derived from the array
 * lengths), run, and return host arrays. K/V and hidden states stay in the model's float type
 * (FloatData), so outputs can be fed back without conversion.
 */
import type * as ort from 'onnxruntime-node';
import { EAGLE_IO } from './eagle-graph.js';
import { LOOP_IO, reservePads } from './fused/vanilla-loop.js';
import { asFloatData, type FloatData } from './float-data.js';
import { TARGET_IO } from './llama-graph.js';
import { HEAD_IO } from './lm-head-graph.js';
import type { FloatDType } from './onnx/dtypes.js';
import type { Ort } from './ort-runtime.js';

export type TokenIds = ArrayLike<number> | BigInt64Array;

export interface KvLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

export interface DecoderStep {
  /** S token ids. */
  inputIds: TokenIds;
  /** S positions (depth-based for tree nodes). */
  positionIds: TokenIds;
  /** Row-major [S, P+S] additive mask: 0 where visible, a large negative value elsewhere. */
  attentionBias: Float32Array;
  /** Per layer, row-major [P, kvH, D]. */
  pastKeys: readonly FloatData[];
  pastValues: readonly FloatData[];
}

export interface NewKv {
  /** Per layer, row-major [S, kvH, D]: the new tokens' keys (RoPE applied) and values. */
  newKeys: FloatData[];
  newValues: FloatData[];
}

export interface DecoderResult extends NewKv {
  /** [S, d], after the final norm. */
  hidden: FloatData;
  /** S greedy next-token ids. */
  argmax: BigInt64Array;
}

export interface EagleStep extends DecoderStep {
  /** [S, d]: the target's hidden state, or the head's own previous `out`. */
  feature: FloatData;
}

export interface EagleResult extends NewKv {
  /** [S, d]: the next feature, and the LM head's input. */
  out: FloatData;
}

export interface HeadResult {
  /** [N, k] full-vocabulary ids, best first. */
  ids: BigInt64Array;
  /** [N, k] log-probabilities over the head's vocabulary. */
  logprobs: Float32Array;
}

function int64(values: TokenIds): BigInt64Array {
  return values instanceof BigInt64Array ? values : BigInt64Array.from(Array.from(values), (v) => BigInt(v));
}

/** Feeds and runs one of the decoder-shaped graphs (target, draft, EAGLE head). */
class KvGraphRunner {
  constructor(
    protected readonly ort: Ort,
    readonly session: ort.InferenceSession,
    readonly kv: KvLayout,
    readonly dtype: FloatDType,
    readonly hiddenSize: number,
  ) {}

  protected feeds(step: DecoderStep): Record<string, ort.Tensor> {
    const s = step.inputIds.length;
    const rowWidth = this.kv.numKvHeads * this.kv.headDim;
    const past = (step.pastKeys[0]?.length ?? 0) / rowWidth;
    if (step.pastKeys.length !== this.kv.numLayers || step.pastValues.length !== this.kv.numLayers) throw new Error(`expected past K/V for ${this.kv.numLayers} layers`);
    if (step.positionIds.length !== s) throw new Error(`${step.positionIds.length} positions for ${s} tokens`);
    if (step.attentionBias.length !== s * (past + s)) throw new Error(`attention_bias has ${step.attentionBias.length} values, expected ${s} × ${past + s}`);
    const { Tensor } = this.ort;
    const feeds: Record<string, ort.Tensor> = {
      [TARGET_IO.inputIds]: new Tensor('int64', int64(step.inputIds), [1, s]),
      [TARGET_IO.positionIds]: new Tensor('int64', int64(step.positionIds), [1, s]),
      [TARGET_IO.attentionBias]: new Tensor('float32', step.attentionBias, [1, 1, s, past + s]),
    };
    const kvDims = [1, past, this.kv.numKvHeads, this.kv.headDim];
    for (let i = 0; i < this.kv.numLayers; i++) {
      if (step.pastKeys[i].length !== past * rowWidth || step.pastValues[i].length !== past * rowWidth) throw new Error(`layer ${i}: past K/V lengths differ from layer 0's`);
      feeds[TARGET_IO.pastKey(i)] = new Tensor(this.dtype, step.pastKeys[i], kvDims);
      feeds[TARGET_IO.pastValue(i)] = new Tensor(this.dtype, step.pastValues[i], kvDims);
    }
    return feeds;
  }

  protected newKv(out: ort.InferenceSession.ReturnType): NewKv {
    const layers = Array.from({ length: this.kv.numLayers }, (_, i) => i);
    return {
      newKeys: layers.map((i) => asFloatData(out[TARGET_IO.newKey(i)].data, this.dtype)),
      newValues: layers.map((i) => asFloatData(out[TARGET_IO.newValue(i)].data, this.dtype)),
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** target.onnx and draft.onnx. */
export class DecoderSession extends KvGraphRunner {
  async run(step: DecoderStep): Promise<DecoderResult> {
    return this.result(await this.session.run(this.feeds(step)));
  }

  protected result(out: ort.InferenceSession.ReturnType): DecoderResult {
    return {
      hidden: asFloatData(out[TARGET_IO.hidden].data, this.dtype),
      argmax: out[TARGET_IO.argmax].data as BigInt64Array,
      ...this.newKv(out),
    };
  }
}

/**
 * A decode step with reserved cache rows (src/model/fused/reserved-decode.ts): the exact past is padded on the
 * device to `totalRows` in the carried layout (`layout`: rank and row axis), as a reserving vanilla loop holds it.
 */
export class ReservedDecoderSession extends DecoderSession {
  constructor(
    ort: Ort,
    session: ort.InferenceSession,
    kv: KvLayout,
    dtype: FloatDType,
    hiddenSize: number,
    private readonly layout: { rank: number; rowAxis: number },
  ) {
    super(ort, session, kv, dtype, hiddenSize);
  }

  /** The ids 0 … R−1 of the last `runReserved`'s R rows: the same for every step of a generation. */
  private rowIds?: ort.Tensor;

  async runReserved(step: DecoderStep, totalRows: number): Promise<DecoderResult> {
    const past = (step.pastKeys[0]?.length ?? 0) / (this.kv.numKvHeads * this.kv.headDim);
    if (!(past + step.inputIds.length <= totalRows)) throw new Error(`a step over ${past} cached rows does not fit ${totalRows} reserved rows`);
    const feeds = this.feeds(step);
    const { Tensor } = this.ort;
    feeds[LOOP_IO.reservePads] = new Tensor('int64', BigInt64Array.from(reservePads(this.layout, totalRows - past)), [2 * this.layout.rank]);
    if (this.rowIds?.dims[0] !== totalRows) this.rowIds = new Tensor('int64', BigInt64Array.from({ length: totalRows }, (_, i) => BigInt(i)), [totalRows]);
    feeds[LOOP_IO.reservedRowIds] = this.rowIds;
    return this.result(await this.session.run(feeds));
  }
}

/** eagle.onnx. */
export class EagleSession extends KvGraphRunner {
  async run(step: EagleStep): Promise<EagleResult> {
    const s = step.inputIds.length;
    if (step.feature.length !== s * this.hiddenSize) throw new Error(`feature has ${step.feature.length} values, expected ${s} × ${this.hiddenSize}`);
    const feeds = this.feeds(step);
    feeds[EAGLE_IO.feature] = new this.ort.Tensor(this.dtype, step.feature, [1, s, this.hiddenSize]);
    const out = await this.session.run(feeds);
    return { out: asFloatData(out[EAGLE_IO.out].data, this.dtype), ...this.newKv(out) };
  }
}

/** lm_head.onnx, or an FR-Spec subset head built at load time. */
export class HeadSession {
  constructor(
    private readonly ort: Ort,
    readonly session: ort.InferenceSession,
    readonly dtype: FloatDType,
    readonly hiddenSize: number,
    /** How many tokens the head scores: V for the full head, r for a subset head. */
    readonly vocabSize: number,
  ) {}

  /** Top-k for each row of `hidden` ([N, d] row-major). */
  async run(hidden: FloatData, k: number): Promise<HeadResult> {
    const rows = hidden.length / this.hiddenSize;
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`hidden has ${hidden.length} values, not a positive number of rows of ${this.hiddenSize}`);
    if (!Number.isInteger(k) || k < 1 || k > this.vocabSize) throw new Error(`top-k must be between 1 and the head's vocabulary size ${this.vocabSize}, got ${k}`);
    const { Tensor } = this.ort;
    const out = await this.session.run({
      [HEAD_IO.hidden]: new Tensor(this.dtype, hidden, [rows, this.hiddenSize]),
      [HEAD_IO.topK]: new Tensor('int64', BigInt64Array.of(BigInt(k)), [1]),
    });
    return { ids: out[HEAD_IO.topkIds].data as BigInt64Array, logprobs: out[HEAD_IO.topkLogprobs].data as Float32Array };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
