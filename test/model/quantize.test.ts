import { expect } from 'chai';
import { dequantizeRowsInt8, quantizeRowsInt8 } from '../../src/model/quantize.js';
import { Rng } from './helpers/reference-math.js';

describe('model/quantize (int8 rows, one scale per row)', () => {
  it('keeps every value within half a step of its row, the row maximum exact', () => {
    const [rows, cols] = [50, 24];
    const rng = new Rng(17);
    // Rows of very different magnitudes: one scale per row must serve each of them.
    const data = Float32Array.from({ length: rows * cols }, (_, i) => rng.floats(1, 10 ** (Math.floor(i / cols) % 5 - 2))[0]);
    const { values, scales } = quantizeRowsInt8(data, rows, cols);
    const restored = dequantizeRowsInt8({ values, scales });
    for (let r = 0; r < rows; r++) {
      const row = data.subarray(r * cols, (r + 1) * cols);
      const max = row.reduce((m, w) => Math.max(m, Math.abs(w)), 0);
      expect(scales[r]).to.be.closeTo(max / 127, 1e-7 * max);
      const qRow = values.subarray(r * cols, (r + 1) * cols);
      expect(Math.max(...Array.from(qRow, Math.abs)), `row ${r} uses the full range`).to.equal(127);
      for (let c = 0; c < cols; c++) expect(Math.abs(restored[r * cols + c] - row[c]), `row ${r} col ${c}`).to.be.at.most(scales[r] / 2 + 1e-7 * max);
    }
  });

  it('an all-zero row gets scale 1 and zeros; values stay in -127..127', () => {
    const { values, scales } = quantizeRowsInt8(Float32Array.of(0, 0, 0, 1e30, -1e30, 3), 2, 3);
    expect(Array.from(scales.subarray(0, 1))).to.deep.equal([1]);
    expect(Array.from(values)).to.deep.equal([0, 0, 0, 127, -127, 0]);
  });

  it('refuses data that is not rows × cols', () => {
    expect(() => quantizeRowsInt8(new Float32Array(5), 2, 3)).to.throw(/5 values are not 2 rows of 3/);
  });
});
