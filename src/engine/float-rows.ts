/** Row-major [rows, d] float arrays in a model's float type. */
import { allocFloatData, type FloatData } from '../model/float-data.js';
import type { FloatDType } from '../model/onnx/dtypes.js';

/** The rows, stacked into one [rows.length, d] array. */
export function stackRows(rows: readonly FloatData[], dtype: FloatDType, width: number): FloatData {
  const out = allocFloatData(dtype, rows.length * width);
  rows.forEach((row, i) => {
    if (row.length !== width) throw new Error(`row ${i} has ${row.length} values, expected ${width}`);
    out.set(row, i * width);
  });
  return out;
}
