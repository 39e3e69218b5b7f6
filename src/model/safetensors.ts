/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}`, then the tensor bytes
 * (offsets relative to the end of the header). Tensors are read one at a time, on demand, so a
 * checkpoint never has to fit in memory at once.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from './half-precision.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export interface TensorDataFor {
  F32: Float32Array;
  /** fp16 bit patterns. */
  F16: Uint16Array;
  /** bfloat16 bit patterns. */
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
}

export interface HostTensor<D extends SafetensorsDType = SafetensorsDType> {
  dtype: D;
  shape: number[];
  data: TensorDataFor[D];
}

export interface Float32Tensor {
  shape: number[];
  data: Float32Array;
}

export interface TensorInfo {
  /** The dtype string as stored; only SafetensorsDType values can be read. */
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};
const READABLE_DTYPES = new Set<string>(['F32', 'F16', 'BF16', 'I64', 'I32']);
/** The format's own bound on the header size. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** readSync moves at most 2 GiB per call. */
const READ_CHUNK_BYTES = 1024 ** 3;

function malformed(path: string, why: string): UserError {
  return new UserError(`${path}: malformed safetensors header: ${why}`);
}

function isDimList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function parseHeader(path: string, header: unknown, dataStart: number, fileSize: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw malformed(path, 'not a JSON object');
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in BYTES_PER_ELEMENT)) throw malformed(path, `${name}: unknown dtype ${String(dtype)}`);
    if (!isDimList(shape)) throw malformed(path, `${name}: bad shape`);
    if (!isDimList(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) throw malformed(path, `${name}: bad data_offsets`);
    const begin = dataStart + offsets[0];
    const end = dataStart + offsets[1];
    if (end > fileSize) throw malformed(path, `${name}: data ends at byte ${end}, past the end of the file (${fileSize} bytes)`);
    const expected = shape.reduce((p, d) => p * d, 1) * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expected) throw malformed(path, `${name}: ${end - begin} bytes for ${dtype} [${shape.join(', ')}]`);
    tensors.set(name, { dtype, shape, begin, end });
  }
  return { tensors, metadata };
}

function readExactly(fd: number, target: Uint8Array, position: number): void {
  for (let done = 0; done < target.byteLength; ) {
    const length = Math.min(READ_CHUNK_BYTES, target.byteLength - done);
    const read = readSync(fd, target, done, length, position + done);
    if (read === 0) throw new Error('unexpected end of file');
    done += read;
  }
}

/** One .safetensors file; only the header is read when opened. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new UserError(`${path}: cannot open safetensors file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    try {
      const fileSize = fstatSync(fd).size;
      if (fileSize < 8) throw malformed(path, 'file shorter than the 8-byte header length');
      const lengthBytes = new Uint8Array(8);
      readExactly(fd, lengthBytes, 0);
      const headerLength = Number(Buffer.from(lengthBytes).readBigUInt64LE(0));
      if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
        throw malformed(path, `header length ${headerLength} does not fit the file (${fileSize} bytes)`);
      }
      const headerBytes = new Uint8Array(headerLength);
      readExactly(fd, headerBytes, 8);
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
      } catch (error) {
        throw malformed(path, `not valid JSON (${(error as Error).message})`);
      }
      const { tensors, metadata } = parseHeader(path, header, 8 + headerLength, fileSize);
      return new SafetensorsFile(path, tensors, metadata);
    } finally {
      closeSync(fd);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new UserError(`${this.path}: no tensor named ${name}`);
    return info;
  }

  /** The tensor in its stored dtype. */
  read(name: string): HostTensor {
    const info = this.info(name);
    if (!READABLE_DTYPES.has(info.dtype)) {
      throw new UserError(`${this.path}: tensor ${name} has dtype ${info.dtype}; supported: ${[...READABLE_DTYPES].join(', ')}`);
    }
    const buffer = new ArrayBuffer(info.end - info.begin);
    const fd = openSync(this.path, 'r');
    try {
      readExactly(fd, new Uint8Array(buffer), info.begin);
    } finally {
      closeSync(fd);
    }
    const dtype = info.dtype as SafetensorsDType;
    const data =
      dtype === 'F32' ? new Float32Array(buffer)
      : dtype === 'I64' ? new BigInt64Array(buffer)
      : dtype === 'I32' ? new Int32Array(buffer)
      : new Uint16Array(buffer);
    return { dtype, shape: [...info.shape], data } as HostTensor;
  }

  /** The tensor converted to fp32 (F16 and BF16 convert exactly). */
  readFloat32(name: string): Float32Tensor {
    return { shape: this.info(name).shape.slice(), data: toFloat32(this.read(name), `${this.path}: ${name}`) };
  }
}

export function toFloat32(tensor: HostTensor, label = 'tensor'): Float32Array {
  switch (tensor.dtype) {
    case 'F32':
      return tensor.data as Float32Array;
    case 'F16':
      return float16BitsToFloat32(tensor.data as Uint16Array);
    case 'BF16':
      return bfloat16BitsToFloat32(tensor.data as Uint16Array);
    default:
      throw new UserError(`${label}: expected a floating-point tensor, found ${tensor.dtype}`);
  }
}

/** Writes tensors (in the given order) with an optional string metadata map. */
export function writeSafetensors(path: string, tensors: Record<string, HostTensor>, metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, tensor] of entries) {
    const elements = tensor.shape.reduce((p, d) => p * d, 1);
    if (tensor.data.length !== elements) throw new Error(`${name}: ${tensor.data.length} values for shape [${tensor.shape.join(', ')}]`);
    const byteLength = tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let headerJson = JSON.stringify(header);
  // The format pads the header with spaces so the data starts 8-byte aligned.
  headerJson += ' '.repeat((8 - (Buffer.byteLength(headerJson) % 8)) % 8);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.byteLength));
  const fd = openSync(path, 'w');
  try {
    const writeAll = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done);
    };
    writeAll(prefix);
    writeAll(headerBytes);
    for (const [, tensor] of entries) {
      writeAll(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
}
