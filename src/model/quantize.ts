/**
 * Weight-only int8 quantization of vocabulary tables (embeddings and LM heads, [V, d]): one scale
 * per row, symmetric, so a row is dequantized as `values[i] * scale` and an FR-Spec subset head can
 * take any rows together with their scales.
 */

export interface Int8Rows {
  /** Row-major [rows, cols], each in -127..127. */
  values: Int8Array;
  /** One per row: max |w| of the row / 127 (1 for an all-zero row). */
  scales: Float32Array;
}

export const INT8_LEVELS = 127;

export function quantizeRowsInt8(data: Float32Array, rows: number, cols: number): Int8Rows {
  if (data.length !== rows * cols) throw new Error(`${data.length} values are not ${rows} rows of ${cols}`);
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(row[c]));
    // Dividing by the fp32-rounded scale the graph will multiply with keeps |w - q·s| ≤ s/2.
    const scale = Math.fround(max > 0 ? max / INT8_LEVELS : 1);
    scales[r] = scale;
    for (let c = 0; c < cols; c++) values[r * cols + c] = Math.max(-INT8_LEVELS, Math.min(INT8_LEVELS, Math.round(row[c] / scale)));
  }
  return { values, scales };
}

/** `values[i] * scale` per row, as the graphs compute it (fp32). */
export function dequantizeRowsInt8({ values, scales }: Int8Rows): Float32Array {
  const cols = values.length / scales.length;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * scales[Math.floor(i / cols)];
  return out;
}
