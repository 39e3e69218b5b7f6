/** Byte-level BPE (GPT-2 / Llama-3 / Qwen style): UTF-8 bytes as printable characters, merged by rank. */

/** GPT-2's byte → character table: printable Latin-1 bytes stand for themselves, the rest move to U+0100 on. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const isPrintable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const table: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    table.push(String.fromCharCode(isPrintable(byte) ? byte : 256 + shifted++));
  }
  return table;
})();

const BYTE_TO_CHAR_CODE = Uint16Array.from(BYTE_TO_CHAR, (char) => char.charCodeAt(0));
const MAX_SPREAD_ARGUMENTS = 8192;
const MAX_KEPT_SCRATCH = 1 << 16;

export interface ByteLevelBpeModel {
  /**
   * The strings BPE may emit as tokens (the reference's tokens_to_ids: model vocabulary plus added-token
   * contents), each with the id the reference gives it.
   */
  tokenIds: ReadonlyMap<string, number>;
  /** Merge pairs, lowest rank (applied first) first. */
  merges: ReadonlyArray<readonly [string, string]>;
  /** When true, a piece that is already a token is emitted whole, without merging. */
  ignoreMerges: boolean;
  /** Id emitted for symbols missing from the vocabulary; undefined drops them, as the reference does. */
  unkId: number | undefined;
}

const NO_TOKEN = -1;
const NO_RANK = -1;

/**
 * Encodes pieces with integer symbols: every string a merge can read or produce gets a number, so
 * merging needs no string building and pair ranks come from an open-addressing table.
 */
export class ByteLevelBpe {
  private readonly utf8 = new TextEncoder();
  private readonly symbolOfByte = new Int32Array(256);
  private readonly pairRanks: PairTable;
  /** Symbol produced by the merge of each rank. */
  private readonly mergedSymbol: Int32Array;
  /** Token id of each symbol, or NO_TOKEN when it is not in the vocabulary. */
  private readonly tokenIdOfSymbol: Int32Array;
  private scratch = new Scratch(64);

  constructor(private readonly model: ByteLevelBpeModel) {
    const numbering = new Map<string, number>();
    const numberOf = (symbol: string) => {
      let number = numbering.get(symbol);
      if (number === undefined) numbering.set(symbol, (number = numbering.size));
      return number;
    };
    for (let byte = 0; byte < 256; byte++) this.symbolOfByte[byte] = numberOf(BYTE_TO_CHAR[byte]!);
    this.pairRanks = new PairTable(model.merges.length);
    this.mergedSymbol = new Int32Array(model.merges.length);
    model.merges.forEach(([left, right], rank) => {
      this.pairRanks.set(numberOf(left), numberOf(right), rank); // a later duplicate wins, as in the reference
      this.mergedSymbol[rank] = numberOf(left + right);
    });
    this.tokenIdOfSymbol = new Int32Array(numbering.size);
    for (const [symbol, number] of numbering) this.tokenIdOfSymbol[number] = model.tokenIds.get(symbol) ?? NO_TOKEN;
  }

  /** Token ids of one pre-tokenized piece of raw text. */
  encode(piece: string): number[] {
    const capacity = piece.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    if (capacity <= this.scratch.bytes.length) return this.encodeInScratch(piece);
    const kept = this.scratch;
    this.scratch = new Scratch(capacity);
    try {
      return this.encodeInScratch(piece);
    } finally {
      if (capacity > MAX_KEPT_SCRATCH) this.scratch = kept; // don't hold on to buffers for one huge piece
    }
  }

  private encodeInScratch(piece: string): number[] {
    const { bytes, symbols, next } = this.scratch;
    const byteCount = this.utf8.encodeInto(piece, bytes).written;
    if (byteCount === 0) return [];
    if (this.model.ignoreMerges) {
      const whole = this.model.tokenIds.get(this.byteLevelString(byteCount));
      if (whole !== undefined) return [whole];
    }
    for (let i = 0; i < byteCount; i++) symbols[i] = this.symbolOfByte[bytes[i]!]!;
    this.merge(byteCount);
    const ids: number[] = [];
    // Merges fold each right symbol into its left neighbour, so the list still starts at 0.
    for (let i = 0; i >= 0; i = next[i]!) {
      const id = this.tokenIdOfSymbol[symbols[i]!]!;
      if (id !== NO_TOKEN) ids.push(id);
      else if (this.model.unkId !== undefined) ids.push(this.model.unkId);
    }
    return ids;
  }

  /** The byte-level string of scratch.bytes[0..count), built flat (a concatenated rope would be slower to hash). */
  private byteLevelString(count: number): string {
    const { bytes, charCodes } = this.scratch;
    for (let i = 0; i < count; i++) charCodes[i] = BYTE_TO_CHAR_CODE[bytes[i]!]!;
    let text = '';
    for (let start = 0; start < count; start += MAX_SPREAD_ARGUMENTS) {
      text += String.fromCharCode.apply(null, charCodes.subarray(start, Math.min(count, start + MAX_SPREAD_ARGUMENTS)) as unknown as number[]);
    }
    return text;
  }

  /**
   * Merges scratch.symbols[0..length) in place: repeatedly the adjacent pair of lowest rank, the
   * leftmost on ties. Symbols form a linked list (scratch.next); a heap of (rank, position) finds
   * the next merge, so long pieces (runs of spaces, long words) stay near-linear.
   */
  private merge(length: number): void {
    const { symbols, next, previous, absorbed, heap } = this.scratch;
    heap.clear();
    for (let i = 0; i < length; i++) {
      next[i] = i + 1 < length ? i + 1 : -1;
      previous[i] = i - 1;
      absorbed[i] = 0;
    }
    for (let i = 0; i + 1 < length; i++) this.pushPair(i);
    while (heap.size > 0) {
      heap.pop();
      const rank = heap.poppedRank;
      const left = heap.poppedPosition;
      const right = next[left]!;
      // Stale entries: the left symbol was absorbed, or its pair changed after the push.
      if (absorbed[left] === 1 || right < 0 || this.pairRanks.get(symbols[left]!, symbols[right]!) !== rank) continue;
      symbols[left] = this.mergedSymbol[rank]!;
      absorbed[right] = 1;
      next[left] = next[right]!;
      if (next[left]! >= 0) previous[next[left]!] = left;
      if (previous[left]! >= 0) this.pushPair(previous[left]!);
      this.pushPair(left);
    }
  }

  private pushPair(left: number): void {
    const { symbols, next, heap } = this.scratch;
    const right = next[left]!;
    if (right < 0) return;
    const rank = this.pairRanks.get(symbols[left]!, symbols[right]!);
    if (rank !== NO_RANK) heap.push(rank, left);
  }
}

/** Buffers reused across pieces, sized for pieces of up to `bytes.length` UTF-8 bytes. */
class Scratch {
  readonly bytes: Uint8Array;
  readonly charCodes: Uint16Array;
  readonly symbols: Int32Array;
  readonly next: Int32Array;
  readonly previous: Int32Array;
  readonly absorbed: Uint8Array;
  readonly heap = new PairHeap();

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.charCodes = new Uint16Array(capacity);
    this.symbols = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.previous = new Int32Array(capacity);
    this.absorbed = new Uint8Array(capacity);
  }
}

/** (left symbol, right symbol) → rank, open addressing with linear probing. */
class PairTable {
  private readonly mask: number;
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly ranks: Int32Array;

  constructor(entries: number) {
    let capacity = 16;
    while (capacity < entries * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.lefts = new Int32Array(capacity);
    this.rights = new Int32Array(capacity);
    this.ranks = new Int32Array(capacity).fill(NO_RANK);
  }

  set(left: number, right: number, rank: number): void {
    let slot = this.slotOf(left, right);
    while (this.ranks[slot] !== NO_RANK && (this.lefts[slot] !== left || this.rights[slot] !== right)) {
      slot = (slot + 1) & this.mask;
    }
    this.lefts[slot] = left;
    this.rights[slot] = right;
    this.ranks[slot] = rank;
  }

  get(left: number, right: number): number {
    for (let slot = this.slotOf(left, right); ; slot = (slot + 1) & this.mask) {
      const rank = this.ranks[slot]!;
      if (rank === NO_RANK || (this.lefts[slot] === left && this.rights[slot] === right)) return rank;
    }
  }

  private slotOf(left: number, right: number): number {
    const hash = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77);
    return (hash ^ (hash >>> 15)) & this.mask;
  }
}

/** A binary min-heap of (rank, position) pairs, ordered by rank, then position. */
class PairHeap {
  private ranks = new Int32Array(64);
  private positions = new Int32Array(64);
  size = 0;
  /** The pair removed by the last pop(). */
  poppedRank = 0;
  poppedPosition = 0;

  clear(): void {
    this.size = 0;
  }

  push(rank: number, position: number): void {
    if (this.size === this.ranks.length) this.grow();
    const { ranks, positions } = this;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (ranks[parent]! < rank || (ranks[parent] === rank && positions[parent]! < position)) break;
      ranks[i] = ranks[parent]!;
      positions[i] = positions[parent]!;
      i = parent;
    }
    ranks[i] = rank;
    positions[i] = position;
  }

  pop(): void {
    const { ranks, positions } = this;
    this.poppedRank = ranks[0]!;
    this.poppedPosition = positions[0]!;
    const size = --this.size;
    const lastRank = ranks[size]!;
    const lastPosition = positions[size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      const sibling = child + 1;
      if (sibling < size && (ranks[sibling]! < ranks[child]! || (ranks[sibling] === ranks[child] && positions[sibling]! < positions[child]!))) {
        child = sibling;
      }
      if (ranks[child]! > lastRank || (ranks[child] === lastRank && positions[child]! > lastPosition)) break;
      ranks[i] = ranks[child]!;
      positions[i] = positions[child]!;
      i = child;
    }
    ranks[i] = lastRank;
    positions[i] = lastPosition;
  }

  private grow(): void {
    const ranks = new Int32Array(this.ranks.length * 2);
    const positions = new Int32Array(this.positions.length * 2);
    ranks.set(this.ranks);
    positions.set(this.positions);
    this.ranks = ranks;
    this.positions = positions;
  }
}
