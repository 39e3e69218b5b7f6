import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsCheckpoint } from '../../src/model/checkpoint.js';
import { float32ToBfloat16Bits, float32ToFloat16Bits, roundToFloat16 } from '../../src/model/half-precision.js';
import { SafetensorsFile, writeSafetensors, type HostTensor } from '../../src/model/safetensors.js';
import { UserError } from '../../src/util/errors.js';

function expectUserError(action: () => unknown, pattern: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(error).to.be.instanceOf(UserError);
    expect((error as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a UserError matching ${pattern}`);
}

/** A safetensors file from a raw header string and data bytes. */
function rawSafetensors(path: string, header: string, data = new Uint8Array(0), declaredLength = Buffer.byteLength(header)): void {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(declaredLength));
  writeFileSync(path, Buffer.concat([prefix, Buffer.from(header), data]));
}

describe('model/safetensors', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fr-spec-safetensors-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const f32 = new Float32Array([1.5, -2.25, 3.0e-3, 65504, -0.1, 7]);
  const tensors: Record<string, HostTensor> = {
    f32: { dtype: 'F32', shape: [2, 3], data: f32 },
    f16: { dtype: 'F16', shape: [3, 2], data: float32ToFloat16Bits(f32) },
    bf16: { dtype: 'BF16', shape: [6], data: float32ToBfloat16Bits(f32) },
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 9007199254740993n]) },
    i32: { dtype: 'I32', shape: [1, 2], data: new Int32Array([-7, 42]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };

  it('round-trips every supported dtype, with metadata', () => {
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, tensors, { format: 'pt' });
    const file = SafetensorsFile.open(path);
    expect(file.metadata).to.deep.equal({ format: 'pt' });
    expect(file.names()).to.deep.equal(Object.keys(tensors));
    for (const [name, tensor] of Object.entries(tensors)) {
      const read = file.read(name);
      expect(read.dtype, name).to.equal(tensor.dtype);
      expect(read.shape, name).to.deep.equal(tensor.shape);
      expect(Array.from(read.data as ArrayLike<unknown>), name).to.deep.equal(Array.from(tensor.data as ArrayLike<unknown>));
    }
  });

  it('converts F16 and BF16 to fp32', () => {
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, tensors);
    const file = SafetensorsFile.open(path);
    expect(Array.from(file.readFloat32('f32').data)).to.deep.equal(Array.from(f32));
    expect(Array.from(file.readFloat32('f16').data)).to.deep.equal(Array.from(roundToFloat16(f32)));
    const bf16 = file.readFloat32('bf16').data;
    // bfloat16 keeps 8 significant bits: rounding error ≤ half a unit, 2^-8 relative.
    f32.forEach((v, i) => expect(bf16[i]).to.be.closeTo(v, Math.abs(v) * 2 ** -8));
    expect(bf16[0]).to.equal(1.5);
    expectUserError(() => file.readFloat32('i32'), /expected a floating-point tensor, found I32/);
  });

  it('rounds fp32 to bfloat16 to nearest even', () => {
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even mantissa (1).
    const bits = float32ToBfloat16Bits(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN]));
    expect(Array.from(bits.slice(0, 2))).to.deep.equal([0x3f80, 0x3f82]);
    expect(bits[2] & 0x7fc0).to.equal(0x7fc0);
  });

  it('opens a sharded checkpoint through model.safetensors.index.json', () => {
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), { f32: tensors.f32, i64: tensors.i64 });
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { bf16: tensors.bf16 });
    const weightMap = { f32: 'model-00001-of-00002.safetensors', i64: 'model-00001-of-00002.safetensors', bf16: 'model-00002-of-00002.safetensors' };
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const checkpoint = SafetensorsCheckpoint.open(dir);
    expect(checkpoint.names().sort()).to.deep.equal(['bf16', 'f32', 'i64']);
    expect(Array.from(checkpoint.readFloat32('f32').data)).to.deep.equal(Array.from(f32));
    expect(checkpoint.readFloat32('bf16').shape).to.deep.equal([6]);
    expect(checkpoint.info('i64').dtype).to.equal('I64');
    expectUserError(() => checkpoint.read('nope'), /no tensor named nope/);
  });

  it('opens a single-file checkpoint folder or file', () => {
    writeSafetensors(join(dir, 'model.safetensors'), { f32: tensors.f32 });
    expect(SafetensorsCheckpoint.open(dir).names()).to.deep.equal(['f32']);
    expect(SafetensorsCheckpoint.open(join(dir, 'model.safetensors')).has('f32')).to.equal(true);
  });

  it('reports a missing shard', () => {
    writeSafetensors(join(dir, 'a.safetensors'), { f32: tensors.f32 });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { f32: 'a.safetensors', x: 'b.safetensors' } }));
    expectUserError(() => SafetensorsCheckpoint.open(dir), /model\.safetensors\.index\.json: shard b\.safetensors is missing \(it holds x\)/);
  });

  it('reports a tensor listed in the index but absent from its shard', () => {
    writeSafetensors(join(dir, 'a.safetensors'), { f32: tensors.f32 });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { y: 'a.safetensors' } }));
    expectUserError(() => SafetensorsCheckpoint.open(dir), /y is listed in a\.safetensors but that shard has no such tensor/);
  });

  it('refuses PyTorch .bin checkpoints', () => {
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not really a pickle');
    expectUserError(() => SafetensorsCheckpoint.open(dir), /pytorch_model\.bin: PyTorch \.bin checkpoints are not supported; convert to safetensors/);
    expectUserError(() => SafetensorsCheckpoint.open(join(dir, 'pytorch_model.bin')), /PyTorch \.bin checkpoints are not supported/);
    const sharded = join(dir, 'sharded');
    mkdirSync(sharded);
    writeFileSync(join(sharded, 'pytorch_model.bin.index.json'), '{}');
    expectUserError(() => SafetensorsCheckpoint.open(sharded), /PyTorch \.bin checkpoints are not supported/);
  });

  it('reports a folder without weights', () => {
    expectUserError(() => SafetensorsCheckpoint.open(dir), /no model\.safetensors or model\.safetensors\.index\.json found/);
  });

  describe('malformed headers', () => {
    const cases: [string, () => void, RegExp][] = [
      ['a file shorter than 8 bytes', () => writeFileSync(join(dir, 'm.safetensors'), Buffer.alloc(3)), /shorter than the 8-byte header length/],
      ['a header length past the end', () => rawSafetensors(join(dir, 'm.safetensors'), '{}', undefined, 1000), /header length 1000 does not fit/],
      ['a header that is not JSON', () => rawSafetensors(join(dir, 'm.safetensors'), '{"a": '), /not valid JSON/],
      ['a header that is a JSON array', () => rawSafetensors(join(dir, 'm.safetensors'), '[1, 2]'), /not a JSON object/],
      ['an unknown dtype', () => rawSafetensors(join(dir, 'm.safetensors'), '{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /a: unknown dtype F8/],
      ['a size that does not match the shape', () => rawSafetensors(join(dir, 'm.safetensors'), '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', new Uint8Array(4)), /a: 4 bytes for F32 \[2\]/],
      ['data past the end of the file', () => rawSafetensors(join(dir, 'm.safetensors'), '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(4)), /past the end of the file/],
      ['reversed data offsets', () => rawSafetensors(join(dir, 'm.safetensors'), '{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', new Uint8Array(4)), /a: bad data_offsets/],
    ];
    for (const [label, write, pattern] of cases) {
      it(label, () => {
        write();
        expectUserError(() => SafetensorsFile.open(join(dir, 'm.safetensors')), new RegExp(`m\\.safetensors: malformed safetensors header: .*${pattern.source}`));
      });
    }
  });

  it('reads a valid but unsupported dtype only on request, with a clear error', () => {
    rawSafetensors(join(dir, 'm.safetensors'), '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"I32","shape":[1],"data_offsets":[2,6]}}', new Uint8Array(6));
    const file = SafetensorsFile.open(join(dir, 'm.safetensors'));
    expect(Array.from(file.read('b').data as Int32Array)).to.deep.equal([0]);
    expectUserError(() => file.read('a'), /tensor a has dtype U8; supported: F32, F16, BF16, I64, I32/);
  });
});
