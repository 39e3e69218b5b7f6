/**
 * Writes (and reads back) what `torch.save(list_of_ints, path)` writes: PyTorch's zip container
 * holding a protocol-2 pickle of a plain Python list of ints. `torch.load(path)` and
 * `torch.load(path, weights_only=True)` (SGLang's `--speculative-token-map`) return that list.
 *
 * Container layout, as PyTorchStreamWriter (caffe2/serialize/inline_container.cc) and torch.save's
 * `_save` (torch/serialization.py) write it:
 * - every record sits under one folder, `<archive>/`; the reader takes the folder name from the
 *   first entry, so no directory entries are needed;
 * - records in torch.save's order: data.pkl, .format_version ("1"), .storage_alignment ("64"),
 *   byteorder ("little"), then at end of file version ("3\n") and .data/serialization_id;
 * - entries are stored (no compression) and each one's data starts on a 64-byte boundary, padded
 *   with a local extra field of id "FB" filled with 'Z' bytes. Only tensor storages need that
 *   alignment (for mmap), but matching it keeps the layout the same as torch's.
 * Against torch 2.11's torch.save of the same list, records, order, alignment and data.pkl bytes are
 * identical; only the zip timestamps, the general-purpose flags (torch's miniz sets the UTF-8 and
 * data-descriptor bits) and the serialization id differ, none of which torch.load reads.
 */
import { strToU8, unzipSync, zipSync, type Zippable } from 'fflate';

const RECORD_ALIGNMENT = 64;
const LOCAL_HEADER_BYTES = 30;
const EXTRA_FIELD_HEADER_BYTES = 4;
/** 'F','B' read as a little-endian u16: the extra field id PyTorch pads with. */
const PADDING_EXTRA_FIELD_ID = 0x4246;
const PADDING_BYTE = 'Z'.charCodeAt(0);
/** DOS timestamps cannot go below 1980; a fixed date keeps the bytes reproducible. */
const FIXED_MTIME = new Date(1980, 0, 1);
const MAX_ID = 2 ** 31 - 1;

/**
 * Bytes of a `.pt` file that torch.load reads back as `list(ids)`. `archiveName` is the records'
 * folder: torch.save(obj, 'freq_32768.pt') uses the file's base name ('freq_32768'), and 'archive'
 * when saving to a buffer. Readers accept any name.
 */
export function encodeTorchIntList(ids: ArrayLike<number>, archiveName = 'archive'): Uint8Array {
  assertArchiveName(archiveName);
  const dataPkl = pickleIntList(ids);
  const records: [string, Uint8Array][] = [
    ['data.pkl', dataPkl],
    ['.format_version', strToU8('1')],
    ['.storage_alignment', strToU8(String(RECORD_ALIGNMENT))],
    ['byteorder', strToU8('little')],
    ['version', strToU8('3\n')],
  ];
  records.push(['.data/serialization_id', strToU8(serializationId(records))]);
  return zipAligned(records.map(([name, data]) => [`${archiveName}/${name}`, data]));
}

/** Reads a `.pt` file holding a pickled list of ints (the subset encodeTorchIntList writes). */
export function decodeTorchIntList(bytes: Uint8Array): number[] {
  const entries = unzipSync(bytes);
  const firstName = Object.keys(entries)[0];
  const slash = firstName?.indexOf('/') ?? -1;
  if (slash < 1) throw new Error('not a PyTorch archive: its first entry is not inside a folder');
  const dataPkl = entries[`${firstName.slice(0, slash)}/data.pkl`];
  if (!dataPkl) throw new Error(`not a PyTorch archive: no ${firstName.slice(0, slash)}/data.pkl`);
  return unpickleIntList(dataPkl);
}

function assertArchiveName(name: string): void {
  if (!/^[\x21-\x7e]+$/.test(name) || name.includes('/') || name.includes('\\')) {
    throw new RangeError(`archive name "${name}" must be non-empty printable ASCII without slashes`);
  }
}

// ---------------------------------------------------------------------------------------------
// Zip container

function zipAligned(records: [string, Uint8Array][]): Uint8Array {
  const zippable: Zippable = {};
  let offset = 0;
  for (const [name, data] of records) {
    const nameBytes = strToU8(name).length;
    const padding = paddingBefore(offset + LOCAL_HEADER_BYTES + nameBytes + EXTRA_FIELD_HEADER_BYTES);
    zippable[name] = [
      data,
      { level: 0, mtime: FIXED_MTIME, extra: { [PADDING_EXTRA_FIELD_ID]: new Uint8Array(padding).fill(PADDING_BYTE) } },
    ];
    offset += LOCAL_HEADER_BYTES + nameBytes + EXTRA_FIELD_HEADER_BYTES + padding + data.length;
  }
  return zipSync(zippable);
}

function paddingBefore(position: number): number {
  return (RECORD_ALIGNMENT - (position % RECORD_ALIGNMENT)) % RECORD_ALIGNMENT;
}

/**
 * torch writes 20 digits of a hash of the record names then 20 digits of combined CRC-32s; readers
 * only log it. Ours has the same shape and is deterministic, but is not torch's (its hash is C++'s
 * std::hash).
 */
function serializationId(records: [string, Uint8Array][]): string {
  let nameHash = 0xcbf29ce484222325n;
  let dataHash = 0n;
  for (const [name, data] of records) {
    for (const byte of strToU8(name)) nameHash = ((nameHash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
    dataHash = (dataHash * 31n + BigInt(crc32(data))) & 0xffffffffffffffffn;
  }
  return nameHash.toString().padStart(20, '0') + dataHash.toString().padStart(20, '0');
}

let crcTable: Uint32Array | undefined;

function crc32(data: Uint8Array): number {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Pickle, protocol 2: the opcodes CPython's C pickler emits for a list of small non-negative ints.

const Op = {
  PROTO: 0x80,
  EMPTY_LIST: 0x5d, // ']'
  BINPUT: 0x71, // 'q'
  LONG_BINPUT: 0x72, // 'r'
  MARK: 0x28, // '('
  APPEND: 0x61, // 'a'
  APPENDS: 0x65, // 'e'
  BININT: 0x4a, // 'J'
  BININT1: 0x4b, // 'K'
  BININT2: 0x4d, // 'M'
  STOP: 0x2e, // '.'
} as const;

/** CPython's pickler appends list items in batches of this many. */
const APPENDS_BATCH = 1000;

function pickleIntList(ids: ArrayLike<number>): Uint8Array {
  const out = new PickleWriter(8 + ids.length * 5 + Math.ceil(ids.length / APPENDS_BATCH) * 2);
  out.byte(Op.PROTO).byte(2);
  out.byte(Op.EMPTY_LIST).byte(Op.BINPUT).byte(0); // the list is memoized as object 0
  if (ids.length === 1) {
    // CPython special-cases one-item lists: APPEND without MARK.
    out.int(checkedId(ids, 0)).byte(Op.APPEND);
  } else {
    for (let start = 0; start < ids.length; start += APPENDS_BATCH) {
      out.byte(Op.MARK);
      const end = Math.min(start + APPENDS_BATCH, ids.length);
      for (let i = start; i < end; i++) out.int(checkedId(ids, i));
      out.byte(Op.APPENDS);
    }
  }
  out.byte(Op.STOP);
  return out.bytes();
}

function checkedId(ids: ArrayLike<number>, index: number): number {
  const id = ids[index];
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
    throw new RangeError(`token id ${id} at index ${index} is not an integer in 0..${MAX_ID}`);
  }
  return id;
}

class PickleWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(capacity: number) {
    this.buffer = new Uint8Array(capacity);
  }

  byte(value: number): this {
    this.buffer[this.length++] = value;
    return this;
  }

  /** The smallest of BININT1 / BININT2 / BININT, as CPython chooses for non-negative ints. */
  int(value: number): this {
    if (value <= 0xff) return this.byte(Op.BININT1).byte(value);
    if (value <= 0xffff) return this.byte(Op.BININT2).byte(value & 0xff).byte(value >>> 8);
    this.byte(Op.BININT);
    new DataView(this.buffer.buffer).setInt32(this.length, value, true);
    this.length += 4;
    return this;
  }

  bytes(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

const MARK_SENTINEL = Symbol('mark');

function unpickleIntList(pickle: Uint8Array): number[] {
  const view = new DataView(pickle.buffer, pickle.byteOffset, pickle.byteLength);
  const stack: (number | number[] | typeof MARK_SENTINEL)[] = [];
  let pos = 0;
  const readU8 = (): number => {
    if (pos >= pickle.length) throw new Error('data.pkl ends before its STOP opcode');
    return pickle[pos++];
  };
  const advance = (n: number): number => {
    if (pos + n > pickle.length) throw new Error('data.pkl ends inside an opcode argument');
    const at = pos;
    pos += n;
    return at;
  };
  for (;;) {
    const op = readU8();
    switch (op) {
      case Op.PROTO:
        readU8();
        break;
      case Op.EMPTY_LIST:
        stack.push([]);
        break;
      case Op.BINPUT:
        readU8();
        break;
      case Op.LONG_BINPUT:
        advance(4);
        break;
      case Op.MARK:
        stack.push(MARK_SENTINEL);
        break;
      case Op.BININT1:
        stack.push(readU8());
        break;
      case Op.BININT2:
        stack.push(view.getUint16(advance(2), true));
        break;
      case Op.BININT:
        stack.push(view.getInt32(advance(4), true));
        break;
      case Op.APPEND:
        listBelow(stack, 1).push(popInt(stack));
        break;
      case Op.APPENDS:
        appendsToList(stack);
        break;
      case Op.STOP: {
        const result = stack.pop();
        if (!Array.isArray(result) || stack.length > 0) throw new Error('data.pkl does not hold a single list');
        return result;
      }
      default:
        throw new Error(`data.pkl uses opcode 0x${op.toString(16)}, which a list of ints never needs`);
    }
  }
}

function popInt(stack: unknown[]): number {
  const value = stack.pop();
  if (typeof value !== 'number') throw new Error('data.pkl appends something other than an int');
  return value;
}

function listBelow(stack: unknown[], depth: number): number[] {
  const list = stack[stack.length - 1 - depth];
  if (!Array.isArray(list)) throw new Error('data.pkl appends to something other than a list');
  return list as number[];
}

function appendsToList(stack: unknown[]): void {
  const mark = stack.lastIndexOf(MARK_SENTINEL);
  if (mark < 1) throw new Error('data.pkl has APPENDS without MARK');
  const items = stack.splice(mark).slice(1);
  const list = listBelow(stack, 0);
  for (const item of items) {
    if (typeof item !== 'number') throw new Error('data.pkl appends something other than an int');
    list.push(item);
  }
}
