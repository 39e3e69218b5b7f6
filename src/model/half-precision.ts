/**
 * Conversions between fp32 values and the 16-bit float encodings (IEEE fp16, bfloat16), which
 * travel as Uint16Array bit patterns (onnxruntime-node's representation of float16 tensors).
 */

/**
 * fp32 → fp16 bits, round to nearest even; overflow gives ±Infinity, NaN stays NaN. Written on the
 * fp32 bit patterns because a polyfilled Float16Array converts at ≈ 80 ns per value, which made
 * exporting a 16 GB checkpoint take twenty minutes (tested value for value against
 * @petamoriken/float16).
 */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) out[i] = halfBits(words[i]);
  return out;
}

function halfBits(word: number): number {
  const sign = (word >>> 16) & 0x8000;
  const exponent = (word >>> 23) & 0xff;
  const mantissa = word & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const halfExponent = exponent - 112; // rebias 127 → 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // A subnormal half (or zero): shift the full significand; below half the smallest subnormal it rounds to 0.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShifted(significand, shift);
  }
  // Rounding may carry into the exponent (and up to Infinity), which the encoding handles by itself.
  return sign | ((halfExponent << 10) + roundShifted(mantissa, 13));
}

/** `value >> shift`, rounded to nearest, ties to even. */
function roundShifted(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
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
