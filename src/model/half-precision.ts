/**
 * Conversions between fp32 values and the 16-bit float encodings (IEEE fp16, bfloat16), which
 * travel as Uint16Array bit patterns (onnxruntime-node's representation of float16 tensors).
 */
import { Float16Array } from '@petamoriken/float16';

/** fp32 → fp16 bits, round to nearest even (bulk conversion of @petamoriken/float16). */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const halves = new Float16Array(values);
  return new Uint16Array(halves.buffer, halves.byteOffset, halves.length);
}

let float16Table: Float32Array | undefined;

/** All 65,536 fp16 values: decoding by table lookup is far faster than element-wise decoding. */
function float16DecodeTable(): Float32Array {
  if (float16Table) return float16Table;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[bits] = mantissa ? NaN : sign * Infinity;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  float16Table = table;
  return table;
}

export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const table = float16DecodeTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** bfloat16 is the upper half of an fp32, so decoding is exact. */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i] << 16;
  return new Float32Array(words.buffer);
}

/** fp32 → bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function float32ToBfloat16Bits(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if ((word & 0x7f800000) === 0x7f800000 && word & 0x007fffff) {
      out[i] = (word >>> 16) | 0x0040;
      continue;
    }
    const roundingBias = 0x7fff + ((word >>> 16) & 1);
    out[i] = ((word + roundingBias) >>> 16) & 0xffff;
  }
  return out;
}

/** Rounds fp32 values through fp16 and back: the values an fp16 model actually holds. */
export function roundToFloat16(values: Float32Array): Float32Array {
  return float16BitsToFloat32(float32ToFloat16Bits(values));
}
