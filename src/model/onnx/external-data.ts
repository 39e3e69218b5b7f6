/**
 * An ONNX external data file that several graphs share: each distinct tensor is written once, at an
 * aligned offset, and every initializer with the same bytes — the embedding in the target, the EAGLE
 * head and the draft model, the LM head in target.onnx and lm_head.onnx — points at that one copy.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

export interface ExternalLocation {
  /** The file name, relative to the graph file (ONNX's `location`). */
  location: string;
  offset: number;
  length: number;
}

const ZEROS = new Uint8Array(64 * 1024);

export class ExternalDataFile {
  private readonly fd: number;
  private readonly written = new Map<string, ExternalLocation>();
  private end = 0;
  private closed = false;

  /** Creates (or truncates) `path`; graphs saved with it must be in the same folder. */
  constructor(
    readonly path: string,
    private readonly alignment = 4096,
  ) {
    this.fd = openSync(path, 'w');
  }

  /** Where `bytes` are in the file: found where the same bytes were written before, or appended. */
  place(bytes: Uint8Array): ExternalLocation {
    if (this.closed) throw new Error(`${this.path} is already closed`);
    const key = `${bytes.byteLength}:${createHash('sha256').update(bytes).digest('hex')}`;
    const existing = this.written.get(key);
    if (existing) return existing;
    this.pad((this.alignment - (this.end % this.alignment)) % this.alignment);
    const location = { location: basename(this.path), offset: this.end, length: bytes.byteLength };
    this.write(bytes);
    this.written.set(key, location);
    return location;
  }

  /** Bytes in the file so far. */
  get size(): number {
    return this.end;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private pad(bytes: number): void {
    while (bytes > 0) {
      const chunk = Math.min(bytes, ZEROS.length);
      this.write(ZEROS.subarray(0, chunk));
      bytes -= chunk;
    }
  }

  private write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(this.fd, bytes, done, bytes.byteLength - done, this.end + done);
    this.end += bytes.byteLength;
  }
}
