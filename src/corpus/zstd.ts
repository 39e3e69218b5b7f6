import { Decompress } from 'fzstd';

/**
 * The part of fzstd 0.1.1's private per-frame state that ZstdStream manages: `w` is the history window (its
 * last bytes are the most recent output) and `e` the window size that back-references are measured from.
 */
interface FzstdFrameState {
  w: Uint8Array;
  e: number;
}

const MAX_BLOCK_BYTES = 128 * 1024;

/**
 * A push-based zstd decompressor: `push` compressed bytes, get back the decompressed blocks they complete.
 *
 * It drives fzstd's streaming Decompress, but keeps each frame's history itself. fzstd allocates the window
 * that the frame header declares (128 MiB for `zstd --long=27`, as SlimPajama shards are written) and after
 * every block (≤ 128 KiB) shifts the whole window with copyWithin: O(window) per block, about 7 MB/s.
 * Instead, ZstdStream pushes input to fzstd one block at a time (BlockBoundaries finds where blocks end) and,
 * when fzstd is about to append a block, points the window at the free space after the history, which makes
 * fzstd's shift a no-op; before the next block it points the window back at the history. The history buffer
 * grows with the frame's output (no reference reaches before the frame's start) up to the declared window,
 * and is compacted once in a while instead of after every block.
 * When fzstd's internals don't look as expected, ZstdStream leaves them alone (correct, only slower).
 *
 * Known fzstd 0.1.1 bug, not fixed here (its pull request #22): match offsets of about 96 MiB and more can be
 * mis-read, silently giving wrong bytes. Only frames with a window over 64 MiB and that much output can have
 * them; the SlimPajama shards in shared/ (about 100 MB each, --long=27) decode byte for byte as zstd does.
 */
export class ZstdStream {
  private readonly decoder: Decompress;
  private readonly boundaries = new BlockBoundaries();
  private decoded: Uint8Array[] = [];
  /** Blocks whose last byte has been pushed to fzstd, and blocks fzstd has handed back so far. */
  private blocksPushed = 0;
  private blocksDecoded = 0;
  private frame: { state: FzstdFrameState; history: FrameHistory } | undefined;

  constructor() {
    this.decoder = new Decompress((block, final) => {
      if (!final) this.onBlock(block);
    });
  }

  /** Decompresses what it can of `chunk`; the decoder keeps references to `chunk`, so don't reuse its memory. */
  push(chunk: Uint8Array): Uint8Array[] {
    let start = 0;
    for (const end of this.boundaries.scan(chunk)) {
      this.blocksPushed += 1;
      this.pushPiece(chunk.subarray(start, end));
      start = end;
    }
    if (start < chunk.length) this.pushPiece(chunk.subarray(start));
    return this.takeDecoded();
  }

  /** Ends the stream; throws when it stopped in the middle of a frame. */
  finish(): Uint8Array[] {
    this.decoder.push(new Uint8Array(0), true);
    return this.takeDecoded();
  }

  private pushPiece(piece: Uint8Array): void {
    this.decoder.push(piece, false);
    this.frame?.history.showAsWindow(this.frame.state);
  }

  private takeDecoded(): Uint8Array[] {
    const blocks = this.decoded;
    this.decoded = [];
    return blocks;
  }

  /** Called by fzstd with each decoded block, before it appends the block to the frame's window. */
  private onBlock(block: Uint8Array): void {
    this.blocksDecoded += 1;
    if (block.length > 0) this.decoded.push(block);
    const state = (this.decoder as unknown as { s?: unknown }).s;
    if (!isFrameState(state)) return;
    if (state !== this.frame?.state) this.frame = { state, history: new FrameHistory(state.e) };
    // With more blocks waiting in this push (fzstd holds back a frame's first bytes until it has 18),
    // fzstd decodes the next one before showAsWindow runs, so it must get a real window now.
    const { history } = this.frame;
    if (this.blocksDecoded === this.blocksPushed) history.appendThroughWindow(state, block.length);
    else history.appendThroughShiftedWindow(state, block.length);
  }
}

/**
 * The last bytes of a frame's output, as many as its declared window (fewer at first: no reference reaches
 * before the frame's start), in a buffer with free space after them for the next blocks.
 */
class FrameHistory {
  private bytes = new Uint8Array(capacityFor(0));
  private end = 0;

  constructor(private readonly declaredWindow: number) {}

  /** Points fzstd's window at the history, for decoding the next block. */
  showAsWindow(state: FzstdFrameState): void {
    const kept = this.kept();
    state.w = this.bytes.subarray(this.end - kept, this.end);
    state.e = kept;
  }

  /** fzstd will shift a window of exactly the block's size (a no-op) and write the block into it. */
  appendThroughWindow(state: FzstdFrameState, blockBytes: number): void {
    this.makeRoom(blockBytes);
    state.w = this.bytes.subarray(this.end, this.end + blockBytes);
    state.e = blockBytes;
    this.end += blockBytes;
  }

  /** fzstd will shift the window left by the block's size and write the block at its end, as it usually does. */
  appendThroughShiftedWindow(state: FzstdFrameState, blockBytes: number): void {
    const size = Math.min(this.end + blockBytes, this.declaredWindow);
    const window = new Uint8Array(capacityFor(size));
    window.set(this.bytes.subarray(this.end - (size - blockBytes), this.end), blockBytes);
    this.bytes = window;
    this.end = size;
    state.w = window.subarray(0, size);
    state.e = size;
  }

  private kept(): number {
    return Math.min(this.end, this.declaredWindow);
  }

  /** Ensures the block fits after the history, compacting or growing the buffer (amortized O(1) a byte). */
  private makeRoom(blockBytes: number): void {
    if (this.end + blockBytes <= this.bytes.length) return;
    const kept = this.kept();
    const start = this.end - kept;
    if (capacityFor(kept) <= this.bytes.length) {
      this.bytes.copyWithin(0, start, this.end);
    } else {
      const size = Math.min(Math.max(capacityFor(kept), 2 * this.bytes.length), capacityFor(this.declaredWindow));
      const grown = new Uint8Array(size);
      grown.set(this.bytes.subarray(start, this.end));
      this.bytes = grown;
    }
    this.end = kept;
  }
}

/** A buffer for `kept` bytes of history with room for at least a quarter more output and two blocks. */
function capacityFor(kept: number): number {
  return kept + (kept >> 2) + 2 * MAX_BLOCK_BYTES;
}

function isFrameState(state: unknown): state is FzstdFrameState {
  if (typeof state !== 'object' || state === null) return false;
  const { w, e } = state as Partial<FzstdFrameState>;
  return w instanceof Uint8Array && typeof e === 'number';
}

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type Expecting = 'magic' | 'frameHeaderDescriptor' | 'frameHeaderRest' | 'skippableSize' | 'blockHeader';

/**
 * Finds where zstd blocks end in a compressed stream by reading only the framing (RFC 8878 frame and block
 * headers), not the compressed data. After unexpected bytes it stops reporting; fzstd then reports the error.
 */
export class BlockBoundaries {
  private expecting: Expecting = 'magic';
  private readonly header = new Uint8Array(16);
  private headerBytes = 0;
  private headerNeeded = 4;
  /** Bytes to pass over (block contents, checksums, skippable frames) before the next header. */
  private skipBytes = 0;
  private inBlock = false;
  private lastBlock = false;
  private hasChecksum = false;
  private broken = false;

  /** Offsets in `chunk` right after each block that ends in it. */
  scan(chunk: Uint8Array): number[] {
    const ends: number[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.broken) {
      if (this.skipBytes > 0) {
        const skipped = Math.min(this.skipBytes, chunk.length - pos);
        pos += skipped;
        this.skipBytes -= skipped;
        if (this.skipBytes === 0) this.endSkip(pos, ends);
        continue;
      }
      const taken = Math.min(this.headerNeeded - this.headerBytes, chunk.length - pos);
      this.header.set(chunk.subarray(pos, pos + taken), this.headerBytes);
      this.headerBytes += taken;
      pos += taken;
      if (this.headerBytes === this.headerNeeded) this.readHeader(pos, ends);
    }
    return ends;
  }

  private readHeader(pos: number, ends: number[]): void {
    const h = this.header;
    this.headerBytes = 0;
    switch (this.expecting) {
      case 'magic': {
        const magic = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
        if (magic === FRAME_MAGIC) this.expect('frameHeaderDescriptor', 1);
        else if (((magic & SKIPPABLE_MAGIC_MASK) >>> 0) === SKIPPABLE_MAGIC) this.expect('skippableSize', 4);
        else this.broken = true;
        return;
      }
      case 'skippableSize':
        this.skipBytes = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
        this.expect('magic', 4);
        return;
      case 'frameHeaderDescriptor': {
        const descriptor = h[0];
        const singleSegment = (descriptor >> 5) & 1;
        const contentSizeBytes = [singleSegment, 2, 4, 8][descriptor >> 6];
        const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3];
        this.hasChecksum = ((descriptor >> 2) & 1) === 1;
        const rest = (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
        if (rest > 0) this.expect('frameHeaderRest', rest);
        else this.expect('blockHeader', 3);
        return;
      }
      case 'frameHeaderRest':
        this.expect('blockHeader', 3);
        return;
      case 'blockHeader': {
        const blockHeader = h[0] | (h[1] << 8) | (h[2] << 16);
        const type = (blockHeader >> 1) & 3;
        if (type === 3) {
          this.broken = true;
          return;
        }
        this.lastBlock = (blockHeader & 1) === 1;
        this.inBlock = true;
        this.skipBytes = type === 1 ? 1 : blockHeader >>> 3;
        if (this.skipBytes === 0) this.endSkip(pos, ends);
        return;
      }
    }
  }

  /** What follows the bytes just skipped: the next block, a checksum or the next frame. */
  private endSkip(pos: number, ends: number[]): void {
    if (!this.inBlock) return; // a checksum or a skippable frame: the next magic number is already expected
    this.inBlock = false;
    ends.push(pos);
    if (!this.lastBlock) {
      this.expect('blockHeader', 3);
      return;
    }
    this.expect('magic', 4);
    this.skipBytes = this.hasChecksum ? 4 : 0;
  }

  private expect(what: Expecting, bytes: number): void {
    this.expecting = what;
    this.headerNeeded = bytes;
  }
}
