/** Converts host data to the little-endian bytes that TensorProto.raw_data and external data hold. */
import { endianness } from 'node:os';
import { float32ToFloat16Bits } from '../half-precision.js';
import type { DType, HostData } from './dtypes.js';

if (endianness() !== 'LE') {
  throw new Error('fr-spec writes ONNX tensors from typed arrays and needs a little-endian host');
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function toFloat32Array(data: Float32Array | readonly number[]): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/** Returns the tensor's raw bytes (a view, not a copy, when the input already has the layout). */
export function tensorBytes<D extends DType>(dtype: D, data: HostData<D>): { bytes: Uint8Array; length: number } {
  switch (dtype) {
    case 'float32': {
      const values = toFloat32Array(data as HostData<'float32'>);
      return { bytes: bytesOf(values), length: values.length };
    }
    case 'float16': {
      const input = data as HostData<'float16'>;
      const bits = input instanceof Uint16Array ? input : float32ToFloat16Bits(toFloat32Array(input));
      return { bytes: bytesOf(bits), length: bits.length };
    }
    case 'int64': {
      const input = data as HostData<'int64'>;
      const values = input instanceof BigInt64Array ? input : BigInt64Array.from(input, (v) => BigInt(v));
      return { bytes: bytesOf(values), length: values.length };
    }
    case 'int32': {
      const input = data as HostData<'int32'>;
      const values = input instanceof Int32Array ? input : Int32Array.from(input);
      return { bytes: bytesOf(values), length: values.length };
    }
    case 'int8': {
      const input = data as HostData<'int8'>;
      const values = input instanceof Int8Array ? input : Int8Array.from(input);
      return { bytes: bytesOf(values), length: values.length };
    }
    case 'bool': {
      const input = data as HostData<'bool'>;
      const values = input instanceof Uint8Array ? input : Uint8Array.from(input, (v) => (v ? 1 : 0));
      return { bytes: bytesOf(values), length: values.length };
    }
    default:
      throw new Error(`unsupported dtype ${String(dtype)}`);
  }
}
