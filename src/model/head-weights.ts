/**
 * Reads rows of the exported LM head weight ([V,d], one row per vocabulary id) straight from
 * lm_head.onnx — from its external data file, where export puts it, or inline — so an FR-Spec
 * subset head of any size can be built at load time without loading the whole head.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { HEAD_WEIGHT } from './lm-head-graph.js';
import { BYTES_PER_ELEMENT, dtypeFromOnnx, type FloatDType } from './onnx/dtypes.js';
import { decodeModel, OnnxDataLocation, type TensorProto } from './onnx/proto.js';

type RowSource = { kind: 'file'; path: string; offset: number } | { kind: 'inline'; bytes: Uint8Array };

export class HeadWeights {
  private constructor(
    readonly vocabSize: number,
    readonly hiddenSize: number,
    readonly dtype: FloatDType,
    private readonly source: RowSource,
  ) {}

  static open(modelPath: string): HeadWeights {
    const model = decodeModel(readFileSync(modelPath));
    const tensor = model.graph.initializer.find((init) => init.name === HEAD_WEIGHT);
    if (!tensor) throw new UserError(`${modelPath}: no initializer named ${HEAD_WEIGHT}`);
    const dtype = dtypeFromOnnx(tensor.data_type);
    if ((dtype !== 'float16' && dtype !== 'float32') || tensor.dims.length !== 2) {
      throw new UserError(`${modelPath}: ${HEAD_WEIGHT} must be a 2-D float16 or float32 tensor`);
    }
    const [vocabSize, hiddenSize] = tensor.dims;
    const expectedBytes = vocabSize * hiddenSize * BYTES_PER_ELEMENT[dtype];
    return new HeadWeights(vocabSize, hiddenSize, dtype, rowSource(modelPath, tensor, expectedBytes));
  }

  /** The rows for `ids`, in that order: fp16 bits (Uint16Array) or fp32 values. */
  readRows(ids: ArrayLike<number>): Float32Array | Uint16Array {
    const rowBytes = this.hiddenSize * BYTES_PER_ELEMENT[this.dtype];
    const out = new Uint8Array(ids.length * rowBytes);
    const fd = this.source.kind === 'file' ? openSync(this.source.path, 'r') : undefined;
    try {
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new UserError(`vocabulary id ${id} is outside the head's vocabulary (0..${this.vocabSize - 1})`);
        const target = out.subarray(i * rowBytes, (i + 1) * rowBytes);
        if (this.source.kind === 'inline') target.set(this.source.bytes.subarray(id * rowBytes, (id + 1) * rowBytes));
        else if (readSync(fd!, target, 0, rowBytes, this.source.offset + id * rowBytes) !== rowBytes) throw new UserError(`${this.source.path}: file ends inside row ${id}`);
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return this.dtype === 'float16' ? new Uint16Array(out.buffer) : new Float32Array(out.buffer);
  }
}

function rowSource(modelPath: string, tensor: TensorProto, expectedBytes: number): RowSource {
  if (tensor.data_location !== OnnxDataLocation.EXTERNAL) {
    const bytes = tensor.raw_data;
    if (!bytes || bytes.byteLength !== expectedBytes) throw new UserError(`${modelPath}: ${HEAD_WEIGHT} has no raw data of ${expectedBytes} bytes`);
    return { kind: 'inline', bytes };
  }
  const entry = (key: string) => tensor.external_data?.find((e) => e.key === key)?.value;
  const location = entry('location');
  const length = Number(entry('length') ?? expectedBytes);
  if (!location || length !== expectedBytes) throw new UserError(`${modelPath}: ${HEAD_WEIGHT} has bad external data (location ${location}, ${length} bytes)`);
  return { kind: 'file', path: join(dirname(modelPath), location), offset: Number(entry('offset') ?? 0) };
}
