/** Running built graphs on onnxruntime-node's CPU execution provider. */
import * as ort from 'onnxruntime-node';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/model/half-precision.js';
import type { GraphBuilder } from '../../../src/model/onnx/builder.js';
import type { FloatDType } from '../../../src/model/onnx/dtypes.js';
import type { Values } from './reference-math.js';

export type Feeds = Record<string, ort.Tensor>;

export async function createSession(model: GraphBuilder | string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 };
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model.toBytes(), options);
}

export async function runOnce(model: GraphBuilder, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const session = await createSession(model);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export function floatTensor(dtype: FloatDType, values: Values, dims: readonly number[]): ort.Tensor {
  const f32 = Float32Array.from(values);
  return dtype === 'float32' ? new ort.Tensor('float32', f32, dims) : new ort.Tensor('float16', float32ToFloat16Bits(f32), dims);
}

export function int64Tensor(values: readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** Values of a float32 or float16 output as fp32. */
export function floats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return float16BitsToFloat32(tensor.data as Uint16Array);
  throw new Error(`not a float tensor: ${tensor.type}`);
}

export function ints(tensor: ort.Tensor): number[] {
  return Array.from(tensor.data as BigInt64Array, Number);
}
