/**
 * A decoder's KV cache on the host, token-major ([T, kvH, D] per layer, the contract's layout).
 * A forward returns only its new rows; the caller keeps the rows it accepts by appending them, so
 * accepted tree nodes are compacted by a plain row copy and rejected rows are never written.
 * The cache is fed back as zero-copy views of the first T rows.
 */
import { allocFloatData, type FloatData } from '../model/float-data.js';
import type { FloatDType } from '../model/onnx/dtypes.js';

export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

export class KvArena {
  private keys: FloatData[];
  private values: FloatData[];
  private rowCount = 0;
  private capacity: number;
  readonly rowWidth: number;

  constructor(
    readonly shape: KvShape,
    readonly dtype: FloatDType,
    initialCapacity = 256,
  ) {
    this.rowWidth = shape.numKvHeads * shape.headDim;
    this.capacity = Math.max(1, initialCapacity);
    this.keys = this.allocate(this.capacity);
    this.values = this.allocate(this.capacity);
  }

  get length(): number {
    return this.rowCount;
  }

  /** The cache as fed to a graph: per layer, the first `length` rows. */
  pastKeys(): FloatData[] {
    return this.keys.map((k) => k.subarray(0, this.rowCount * this.rowWidth));
  }

  pastValues(): FloatData[] {
    return this.values.map((v) => v.subarray(0, this.rowCount * this.rowWidth));
  }

  /** Appends rows `rows` (in that order) of a forward's new K/V ([S, kvH, D] per layer). */
  appendRows(newKeys: readonly FloatData[], newValues: readonly FloatData[], rows: readonly number[]): void {
    this.reserve(this.rowCount + rows.length);
    const w = this.rowWidth;
    for (let layer = 0; layer < this.shape.numLayers; layer++) {
      const [srcK, srcV, dstK, dstV] = [newKeys[layer], newValues[layer], this.keys[layer], this.values[layer]];
      rows.forEach((row, i) => {
        const to = (this.rowCount + i) * w;
        dstK.set(srcK.subarray(row * w, (row + 1) * w), to);
        dstV.set(srcV.subarray(row * w, (row + 1) * w), to);
      });
    }
    this.rowCount += rows.length;
  }

  /** Forgets every row from `length` on (a rewind; nothing is moved). */
  truncate(length: number): void {
    if (length < 0 || length > this.rowCount) throw new Error(`cannot truncate a cache of ${this.rowCount} rows to ${length}`);
    this.rowCount = length;
  }

  /** One row of one layer (tests and debugging). */
  row(layer: number, index: number, which: 'key' | 'value'): FloatData {
    if (index >= this.rowCount) throw new Error(`row ${index} is past the cache's ${this.rowCount} rows`);
    const data = which === 'key' ? this.keys[layer] : this.values[layer];
    return data.subarray(index * this.rowWidth, (index + 1) * this.rowWidth);
  }

  private reserve(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < rows) capacity *= 2;
    const grow = (old: FloatData[]) =>
      old.map((data) => {
        const next = allocFloatData(this.dtype, capacity * this.rowWidth);
        next.set(data.subarray(0, this.rowCount * this.rowWidth));
        return next;
      });
    this.keys = grow(this.keys);
    this.values = grow(this.values);
    this.capacity = capacity;
  }

  private allocate(rows: number): FloatData[] {
    return Array.from({ length: this.shape.numLayers }, () => allocFloatData(this.dtype, rows * this.rowWidth));
  }
}
