/**
 * Moves checkpoint weights into graph initializers, checking shapes, storing them in the export's
 * storage type and converting to the graph's float type. Initializers keep their Hugging Face names;
 * linear weights (HF [out, in]) are stored transposed, [in, out], so the graph multiplies with a
 * plain MatMul; vocabulary tables ([V, d]) keep HF's layout (see vocab-table.ts).
 */
import { UserError } from '../util/errors.js';
import { castTo } from './onnx/basic-ops.js';
import type { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import { quantizeRowsInt8 } from './quantize.js';
import type { Float32Tensor } from './safetensors.js';
import { VocabTable, type StoredTable } from './vocab-table.js';

/**
 * How weights are stored in the files. A storage type narrower than the graph's float type (fp16
 * weights in an fp32 graph) is converted by the graph, once, when onnxruntime loads it.
 */
export interface WeightStorage {
  dtype: FloatDType;
  /** Embedding tables and LM heads: stored like the other weights, or as int8 rows with per-row scales. */
  vocabTables: 'float' | 'int8';
}

export type VocabStorage = WeightStorage['vocabTables'];

/** What the loader needs from a checkpoint (SafetensorsCheckpoint implements it). */
export interface Float32WeightSource {
  has(name: string): boolean;
  readFloat32(name: string): Float32Tensor;
}

/** Row-major [rows, cols] → [cols, rows], in cache-friendly tiles. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const rEnd = Math.min(r0 + tile, rows);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const cEnd = Math.min(c0 + tile, cols);
      for (let r = r0; r < rEnd; r++) {
        for (let c = c0; c < cEnd; c++) out[c * rows + r] = data[r * cols + c];
      }
    }
  }
  return out;
}

/** A weight as fp32, with its shape checked against `expected` (the error names both shapes). */
export function readWeight(source: Float32WeightSource, name: string, expected: readonly number[]): Float32Array {
  if (!source.has(name)) throw new UserError(`the checkpoint has no tensor named ${name}`);
  const tensor = source.readFloat32(name);
  if (tensor.shape.length !== expected.length || tensor.shape.some((d, i) => d !== expected[i])) {
    throw new UserError(`${name}: expected shape [${expected.join(', ')}], found [${tensor.shape.join(', ')}]`);
  }
  return tensor.data;
}

/** A vocabulary table [rows, cols] as `storage` keeps it (int8 quantization is deterministic). */
export function storeVocabTable(data: Float32Array, rows: number, cols: number, storage: WeightStorage): StoredTable {
  return storage.vocabTables === 'int8' ? { kind: 'int8', ...quantizeRowsInt8(data, rows, cols) } : { kind: 'float', dtype: storage.dtype, data };
}

export class WeightLoader {
  private readonly vocabTables = new Map<string, VocabTable>();

  constructor(
    private readonly b: GraphBuilder,
    private readonly source: Float32WeightSource,
    private readonly dtype: FloatDType,
    private readonly storage: WeightStorage = { dtype, vocabTables: 'float' },
  ) {}

  /** A tensor read with its shape checked against `expected`. */
  read(name: string, expected: readonly number[]): Float32Array {
    return readWeight(this.source, name, expected);
  }

  /** A weight stored as it is in the checkpoint (norm scales, biases, embedding tables). */
  tensor(name: string, shape: readonly number[]): string {
    return this.stored(name, shape, this.read(name, shape));
  }

  /** A linear layer's HF weight [outFeatures, inFeatures], stored as [inFeatures, outFeatures]. */
  linearWeight(name: string, inFeatures: number, outFeatures: number): string {
    const data = this.read(name, [outFeatures, inFeatures]);
    return this.stored(name, [inFeatures, outFeatures], transpose2d(data, outFeatures, inFeatures));
  }

  /**
   * Several linear layers over the same input packed into one weight [inFeatures, Σ outFeatures] (their
   * columns side by side, in `parts` order), stored as `name`: one MatMul computes all of them.
   */
  packedLinearWeight(name: string, inFeatures: number, parts: readonly { name: string; outFeatures: number }[]): string {
    const total = parts.reduce((sum, part) => sum + part.outFeatures, 0);
    const packed = new Float32Array(inFeatures * total);
    let column = 0;
    for (const part of parts) {
      const weight = transpose2d(this.read(part.name, [part.outFeatures, inFeatures]), part.outFeatures, inFeatures);
      for (let row = 0; row < inFeatures; row++) packed.set(weight.subarray(row * part.outFeatures, (row + 1) * part.outFeatures), row * total + column);
      column += part.outFeatures;
    }
    return this.stored(name, [inFeatures, total], packed);
  }

  /** Vectors (biases) concatenated in `parts` order and stored as `name`. */
  packedTensor(name: string, parts: readonly { name: string; length: number }[]): string {
    const packed = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      packed.set(this.read(part.name, [part.length]), offset);
      offset += part.length;
    }
    return this.stored(name, [packed.length], packed);
  }

  /** An embedding table or LM head [rows, cols], once per name (a tied table serves both uses). */
  vocabTable(name: string, rows: number, cols: number): VocabTable {
    let table = this.vocabTables.get(name);
    if (!table) {
      const stored = storeVocabTable(this.read(name, [rows, cols]), rows, cols, this.storage);
      table = new VocabTable(this.b, name, stored, rows, cols, this.dtype);
      this.vocabTables.set(name, table);
    }
    return table;
  }

  private stored(name: string, shape: readonly number[], data: Float32Array): string {
    return castTo(this.b, this.b.initializer(name, this.storage.dtype, shape, data), this.dtype);
  }
}
