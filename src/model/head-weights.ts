/**
 * Reads rows of an exported vocabulary table ([V,d], one row per vocabulary id; by default
 * lm_head.onnx's head) straight from a graph file's initializers — in the external data file, where
 * export puts them, or inline — either as stored (float rows, or int8 rows with their scales), so an
 * FR-Spec subset head of any size is built at load time without loading the whole head and stores
 * what the file stores, or as float values.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { floatDataFrom, floatDataToFloat32, type FloatData } from './float-data.js';
import { EMBEDDING_WEIGHT } from './llama-graph.js';
import { HEAD_WEIGHT } from './lm-head-graph.js';
import type { ModelFolder } from './model-folder.js';
import { BYTES_PER_ELEMENT, dtypeFromOnnx, type DType, type FloatDType } from './onnx/dtypes.js';
import { decodeModel, OnnxDataLocation, type TensorProto } from './onnx/proto.js';
import { dequantizeRowsInt8 } from './quantize.js';
import { QUANTIZED_SUFFIX, SCALE_SUFFIX, type StoredTable } from './vocab-table.js';

export type HeadStorage = 'float16' | 'float32' | 'int8';

export class HeadWeights {
  private constructor(
    readonly vocabSize: number,
    readonly hiddenSize: number,
    readonly storage: HeadStorage,
    private readonly weight: TensorRows,
    private readonly scales?: TensorRows,
  ) {}

  /**
   * The table `name` of a graph file: the float initializer `name`, or the int8 pair
   * `name`_quantized / `name`_scale. Default: the LM head (lm_head.onnx's `lm_head.weight`).
   */
  static open(modelPath: string, name: string = HEAD_WEIGHT): HeadWeights {
    const initializers = decodeModel(readFileSync(modelPath)).graph.initializer;
    const find = (initializer: string) => initializers.find((init) => init.name === initializer);
    const float = find(name);
    const quantized = find(name + QUANTIZED_SUFFIX);
    if (float) {
      const dtype = dtypeFromOnnx(float.data_type);
      if ((dtype !== 'float16' && dtype !== 'float32') || float.dims.length !== 2) throw new UserError(`${modelPath}: ${name} must be a 2-D float16 or float32 tensor`);
      const [vocabSize, hiddenSize] = float.dims;
      return new HeadWeights(vocabSize, hiddenSize, dtype, TensorRows.of(modelPath, float, dtype, vocabSize, hiddenSize));
    }
    if (quantized) {
      const scale = find(name + SCALE_SUFFIX);
      const [vocabSize, hiddenSize] = quantized.dims;
      if (dtypeFromOnnx(quantized.data_type) !== 'int8' || quantized.dims.length !== 2) throw new UserError(`${modelPath}: ${name}${QUANTIZED_SUFFIX} must be a 2-D int8 tensor`);
      if (!scale || dtypeFromOnnx(scale.data_type) !== 'float32' || scale.dims.join() !== `${vocabSize},1`) {
        throw new UserError(`${modelPath}: an int8 table needs ${name}${SCALE_SUFFIX}, float32 [${vocabSize}, 1]`);
      }
      return new HeadWeights(vocabSize, hiddenSize, 'int8', TensorRows.of(modelPath, quantized, 'int8', vocabSize, hiddenSize), TensorRows.of(modelPath, scale, 'float32', vocabSize, 1));
    }
    throw new UserError(`${modelPath}: no initializer named ${name} (float table) or ${name}${QUANTIZED_SUFFIX} (int8 table)`);
  }

  /**
   * The LM head of a model folder's target (lm_head.onnx) or plain draft model (in draft.onnx: its
   * `lm_head.weight`, or its embedding table when tied), [V,d] in either case.
   */
  static forModel(folder: ModelFolder, role: 'target' | 'draft'): HeadWeights {
    const { config } = folder;
    if (role === 'target') return HeadWeights.open(folder.path(config.lm_head.file));
    if (!config.draft) throw new UserError(`${folder.dir}: the folder has no draft model`);
    const tied = config.draft.architecture.tie_word_embeddings;
    return HeadWeights.open(folder.path(config.draft.file), tied ? EMBEDDING_WEIGHT : HEAD_WEIGHT);
  }

  /** Float type of readRows' values by default: the stored one, or float32 for an int8 table. */
  get dtype(): FloatDType {
    return this.storage === 'int8' ? 'float32' : this.storage;
  }

  /** The rows for `ids`, in that order, as stored (what a subset head built from them should store). */
  readStoredRows(ids: ArrayLike<number>): StoredTable {
    this.checkIds(ids);
    const bytes = this.weight.read(ids);
    if (this.storage === 'int8') return { kind: 'int8', values: new Int8Array(bytes.buffer), scales: new Float32Array(this.scales!.read(ids).buffer) };
    return { kind: 'float', dtype: this.storage, data: this.storage === 'float16' ? new Uint16Array(bytes.buffer) : new Float32Array(bytes.buffer) };
  }

  /** The rows for `ids`, in that order, as values of `dtype` (int8 rows dequantized). */
  readRows(ids: ArrayLike<number>, dtype: FloatDType = this.dtype): FloatData {
    const stored = this.readStoredRows(ids);
    if (stored.kind === 'float' && stored.dtype === dtype) return stored.data;
    const values = stored.kind === 'int8' ? dequantizeRowsInt8(stored) : floatDataToFloat32(stored.data);
    return floatDataFrom(dtype, values);
  }

  private checkIds(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new UserError(`vocabulary id ${id} is outside the head's vocabulary (0..${this.vocabSize - 1})`);
    }
  }
}

/** Whole rows of a 2-D initializer, read from inline raw data or from its external data file. */
class TensorRows {
  private constructor(
    private readonly label: string,
    private readonly rowBytes: number,
    private readonly source: { kind: 'file'; path: string; offset: number } | { kind: 'inline'; bytes: Uint8Array },
  ) {}

  static of(modelPath: string, tensor: TensorProto, dtype: DType, rows: number, cols: number): TensorRows {
    const label = `${modelPath}: ${tensor.name}`;
    const rowBytes = cols * BYTES_PER_ELEMENT[dtype];
    const expectedBytes = rows * rowBytes;
    if (tensor.data_location !== OnnxDataLocation.EXTERNAL) {
      const bytes = tensor.raw_data;
      if (!bytes || bytes.byteLength !== expectedBytes) throw new UserError(`${label} has no raw data of ${expectedBytes} bytes`);
      return new TensorRows(label, rowBytes, { kind: 'inline', bytes });
    }
    const entry = (key: string) => tensor.external_data?.find((e) => e.key === key)?.value;
    const location = entry('location');
    const length = Number(entry('length') ?? expectedBytes);
    if (!location || length !== expectedBytes) throw new UserError(`${label} has bad external data (location ${location}, ${length} bytes)`);
    return new TensorRows(label, rowBytes, { kind: 'file', path: join(dirname(modelPath), location), offset: Number(entry('offset') ?? 0) });
  }

  /** The rows `ids` (already checked to be in range), concatenated, in a fresh buffer. */
  read(ids: ArrayLike<number>): Uint8Array {
    const { rowBytes, source } = this;
    const out = new Uint8Array(ids.length * rowBytes);
    if (source.kind === 'inline') {
      for (let i = 0; i < ids.length; i++) out.set(source.bytes.subarray(ids[i] * rowBytes, (ids[i] + 1) * rowBytes), i * rowBytes);
      return out;
    }
    const fd = openSync(source.path, 'r');
    try {
      for (let i = 0; i < ids.length; i++) {
        if (readSync(fd, out, i * rowBytes, rowBytes, source.offset + ids[i] * rowBytes) !== rowBytes) throw new UserError(`${this.label}: ${source.path} ends inside row ${ids[i]}`);
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
}
