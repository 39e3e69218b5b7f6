/**
 * Moves checkpoint weights into graph initializers, checking shapes and converting to the graph's
 * float type. Initializers keep their Hugging Face names; linear weights (HF [out, in]) are stored
 * transposed, [in, out], so the graph multiplies with a plain MatMul.
 */
import { UserError } from '../util/errors.js';
import type { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import type { Float32Tensor } from './safetensors.js';

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

export class WeightLoader {
  constructor(
    private readonly b: GraphBuilder,
    private readonly source: Float32WeightSource,
    private readonly dtype: FloatDType,
  ) {}

  /** A tensor read with its shape checked against `expected`. */
  read(name: string, expected: readonly number[]): Float32Array {
    return readWeight(this.source, name, expected);
  }

  /** A weight stored as it is in the checkpoint (norm scales, biases, embedding tables). */
  tensor(name: string, shape: readonly number[]): string {
    return this.b.initializer(name, this.dtype, shape, this.read(name, shape));
  }

  /** A linear layer's HF weight [outFeatures, inFeatures], stored as [inFeatures, outFeatures]. */
  linearWeight(name: string, inFeatures: number, outFeatures: number, storedName = name): string {
    const data = this.read(name, [outFeatures, inFeatures]);
    return this.b.initializer(storedName, this.dtype, [inFeatures, outFeatures], transpose2d(data, outFeatures, inFeatures));
  }
}
