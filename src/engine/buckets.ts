/**
 * Batch sizes are rounded up to a few static sizes, so a session sees the same input shapes over
 * and over (kernel selection and memory planning are cached per shape). Padded rows are dummies:
 * no real row attends to them and their outputs are dropped.
 */
const SMALL = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];

export function bucketSize(rows: number): number {
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`cannot bucket ${rows} rows`);
  for (const size of SMALL) if (rows <= size) return size;
  return Math.ceil(rows / 128) * 128;
}
