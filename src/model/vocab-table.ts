/**
 * Vocabulary tables in a graph — embeddings and LM heads, [V, d] with one row per token id (Hugging
 * Face's layout) — stored as floats or as int8 rows with one scale per row, and the two ways graphs
 * use them: looking rows up (embedding) and scoring hidden states against every row (LM head).
 *
 * Storage names (docs/model-contract.md §6): a float table is the initializer `<name>`; an int8 table
 * is `<name>_quantized` (int8 [V, d]) with `<name>_scale` (float32 [V, 1]), value = quantized × scale.
 * Whatever the storage, the graph computes in its own float type: conversions of whole tables only
 * involve initializers, so onnxruntime folds them once at load time instead of on every call.
 */
import { castTo } from './onnx/basic-ops.js';
import type { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import type { Int8Rows } from './quantize.js';

export const QUANTIZED_SUFFIX = '_quantized';
export const SCALE_SUFFIX = '_scale';

/** A table's rows as stored in the file: floats (fp16 bits or fp32, or fp32 values to convert) or int8 rows. */
export type StoredTable = { kind: 'float'; dtype: FloatDType; data: Float32Array | Uint16Array } | ({ kind: 'int8' } & Int8Rows);

export class VocabTable {
  private readonly stored: { float: string } | { quantized: string; scale: string };
  private fullTable?: string;

  /**
   * @param rows the table's rows: V for a full table, r for an FR-Spec subset
   * @param dtype the graph's float type
   */
  constructor(
    private readonly b: GraphBuilder,
    name: string,
    table: StoredTable,
    readonly rows: number,
    readonly cols: number,
    private readonly dtype: FloatDType,
  ) {
    if (table.kind === 'float') {
      this.stored = { float: b.initializer(name, table.dtype, [rows, cols], table.data) };
    } else {
      if (table.values.length !== rows * cols || table.scales.length !== rows) throw new Error(`${name}: int8 table is not ${rows} rows of ${cols} with one scale each`);
      this.stored = {
        quantized: b.initializer(`${name}${QUANTIZED_SUFFIX}`, 'int8', [rows, cols], table.values),
        scale: b.initializer(`${name}${SCALE_SUFFIX}`, 'float32', [rows, 1], table.scales),
      };
    }
  }

  /** Rows for int64 ids of any shape → [...ids, cols]; only the rows asked for are converted. */
  lookup(ids: string): string {
    const { b } = this;
    return b.scope('embedding', () => {
      if ('float' in this.stored) return castTo(b, b.op('Gather', [this.stored.float, ids], { axis: 0 }), this.dtype);
      const values = castTo(b, b.op('Gather', [this.stored.quantized, ids], { axis: 0 }), 'float32');
      return castTo(b, b.op('Mul', [values, b.op('Gather', [this.stored.scale, ids], { axis: 0 })]), this.dtype);
    });
  }

  /** Scores of hidden rows [N, cols] against every row → [N, rows]: Gemm with transB, the rows as stored. */
  scores(hidden: string): string {
    return this.b.op('Gemm', [hidden, this.table()], { transB: 1 });
  }

  /** The whole table in the graph's float type (a value that depends on initializers only). */
  private table(): string {
    const { b } = this;
    this.fullTable ??= b.scope('dequantize', () => {
      if ('float' in this.stored) return castTo(b, this.stored.float, this.dtype);
      return castTo(b, b.op('Mul', [castTo(b, this.stored.quantized, 'float32'), this.stored.scale]), this.dtype);
    });
    return this.fullTable;
  }
}

/** Logits [1, S, V] of hidden states [1, S, d] (the decoder graphs' batch of one). */
export function sequenceLogits(b: GraphBuilder, hidden: string, table: VocabTable): string {
  return b.scope('lm_head', () => {
    const rows = b.op('Reshape', [hidden, b.constant('int64', [-1, table.cols])]);
    return b.op('Reshape', [table.scores(rows), b.constant('int64', [1, -1, table.rows])]);
  });
}
