/** Inspecting exported graph files: where their initializers' bytes are stored. */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dtypeFromOnnx, type DType } from '../../../src/model/onnx/dtypes.js';
import { decodeModel, OnnxDataLocation } from '../../../src/model/onnx/proto.js';

export interface StoredTensor {
  file: string;
  name: string;
  dtype: DType | undefined;
  dims: number[];
  /** `location@offset+length` for external data, `inline` otherwise. */
  range: string;
  location?: string;
  offset: number;
  length: number;
}

export function storedTensors(dir: string, files: readonly string[]): StoredTensor[] {
  return files.flatMap((file) =>
    decodeModel(readFileSync(join(dir, file))).graph.initializer.map((init) => {
      const base = { file, name: init.name!, dtype: dtypeFromOnnx(init.data_type), dims: init.dims };
      if (init.data_location !== OnnxDataLocation.EXTERNAL) return { ...base, range: 'inline', offset: 0, length: init.raw_data?.byteLength ?? 0 };
      const entry = (key: string) => init.external_data!.find((e) => e.key === key)?.value;
      const [location, offset, length] = [entry('location')!, Number(entry('offset')), Number(entry('length'))];
      return { ...base, range: `${location}@${offset}+${length}`, location, offset, length };
    }),
  );
}

/**
 * The external data file holds each distinct tensor once: no two ranges hold the same bytes, the
 * ranges do not overlap, and the file is their total plus alignment padding only.
 */
export function expectEachTensorOnce(dir: string, stored: readonly StoredTensor[], alignment = 4096): void {
  const external = stored.filter((t) => t.location !== undefined);
  expect(new Set(external.map((t) => t.location)), 'one shared data file').to.have.property('size', 1);
  const path = join(dir, external[0].location!);
  const data = readFileSync(path);
  const ranges = [...new Map(external.map((t) => [t.range, t])).values()].sort((a, b) => a.offset - b.offset);
  const hashes = new Set<string>();
  let end = 0;
  for (const range of ranges) {
    expect(range.offset, `${range.range} starts after the previous tensor`).to.be.at.least(end);
    expect(range.offset % alignment, `${range.range} is aligned`).to.equal(0);
    end = range.offset + range.length;
    const hash = createHash('sha256').update(data.subarray(range.offset, end)).digest('hex');
    expect(hashes.has(hash), `${range.file}: ${range.name} is stored a second time`).to.equal(false);
    hashes.add(hash);
  }
  const total = ranges.reduce((sum, range) => sum + range.length, 0);
  expect(statSync(path).size).to.equal(end).and.be.below(total + ranges.length * alignment);
}
