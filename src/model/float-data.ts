/**
 * Host arrays in a model's float type: Float32Array for float32 models, Uint16Array of fp16 bit
 * patterns for float16 models (onnxruntime-node's float16 representation on Node 20).
 */
import { float16BitsToFloat32, float32ToFloat16Bits } from './half-precision.js';
import type { FloatDType } from './onnx/dtypes.js';

export type FloatData = Float32Array | Uint16Array;

export function allocFloatData(dtype: FloatDType, length: number): FloatData {
  return dtype === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

export function floatDataFrom(dtype: FloatDType, values: ArrayLike<number>): FloatData {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  return dtype === 'float16' ? float32ToFloat16Bits(f32) : f32;
}

export function floatDataToFloat32(data: FloatData): Float32Array {
  return data instanceof Uint16Array ? float16BitsToFloat32(data) : data;
}

/**
 * An output tensor's data as FloatData. Where the runtime has a Float16Array global,
 * onnxruntime returns one; its bits are viewed as a Uint16Array.
 */
export function asFloatData(data: unknown, dtype: FloatDType): FloatData {
  if (dtype === 'float32') {
    if (!(data instanceof Float32Array)) throw new Error('expected float32 output data');
    return data;
  }
  if (data instanceof Uint16Array) return data;
  const view = data as { buffer: ArrayBufferLike; byteOffset: number; length: number; BYTES_PER_ELEMENT: number };
  if (view.BYTES_PER_ELEMENT !== 2) throw new Error('expected float16 output data');
  return new Uint16Array(view.buffer, view.byteOffset, view.length);
}
