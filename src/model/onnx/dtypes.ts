/** Element types the graph builder handles, with their ONNX codes and byte sizes. */
import { OnnxDataType } from './proto.js';

export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'bool';
export type FloatDType = 'float32' | 'float16';

export const ONNX_DATA_TYPE: Record<DType, number> = {
  float32: OnnxDataType.FLOAT,
  float16: OnnxDataType.FLOAT16,
  int64: OnnxDataType.INT64,
  int32: OnnxDataType.INT32,
  int8: OnnxDataType.INT8,
  bool: OnnxDataType.BOOL,
};

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  bool: 1,
};

export function dtypeFromOnnx(code: number): DType | undefined {
  for (const [dtype, value] of Object.entries(ONNX_DATA_TYPE)) {
    if (value === code) return dtype as DType;
  }
  return undefined;
}

/**
 * Host data accepted for an initializer of each dtype. For float16, a Uint16Array holds fp16 bit
 * patterns (as onnxruntime-node does) and a Float32Array or number[] holds values to convert.
 */
export interface HostDataFor {
  float32: Float32Array | readonly number[];
  float16: Uint16Array | Float32Array | readonly number[];
  int64: BigInt64Array | readonly number[];
  int32: Int32Array | readonly number[];
  int8: Int8Array | readonly number[];
  bool: Uint8Array | readonly boolean[];
}

export type HostData<D extends DType> = HostDataFor[D];
