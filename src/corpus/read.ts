import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UserError } from '../util/errors.js';
import type { CorpusDocument, CorpusFile, ReadOptions } from './types.js';
import { ZstdStream } from './zstd.js';

/** Bytes read from disk at a time; also the bound on read-ahead inside the gzip pipeline. */
const READ_CHUNK_BYTES = 1 << 20;
/** Output chunk size of zlib (its default, 16 KiB, costs more per-chunk overhead). */
const GUNZIP_CHUNK_BYTES = 1 << 16;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const BYTE_ORDER_MARK = '\uFEFF';

/** Reads the documents of several files, one file after the other. */
export async function* readCorpus(files: CorpusFile[], opts: ReadOptions = {}): AsyncGenerator<CorpusDocument> {
  for (const file of files) yield* readDocuments(file, opts);
}

/**
 * Streams the documents of one corpus file in constant memory: bytes are read only as documents are pulled
 * (a .zst file also needs its history window: up to 128 MiB, plus slack, for `zstd --long=27`).
 * JSONL files give one document per non-empty line. A .txt file (plain or compressed) is one document whose
 * set name is "txt"; it is held in memory whole, so memory is bounded by the largest .txt file read.
 */
export async function* readDocuments(file: CorpusFile, opts: ReadOptions = {}): AsyncGenerator<CorpusDocument> {
  const chunks = decompressedChunks(file, opts.onBytes);
  const documents = file.format.startsWith('txt') ? textDocument(file, chunks) : jsonlDocuments(file, chunks, opts);
  for await (const document of documents) {
    if (opts.sets === undefined || opts.sets.has(document.setName)) yield document;
  }
}

/** The file's bytes after decompression (.gz and .zst), in chunks. */
export function decompressedChunks(file: CorpusFile, onBytes?: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  const compressed = fileChunks(file.path, onBytes);
  if (file.format.endsWith('.gz')) return gunzipChunks(compressed, file.path);
  if (file.format.endsWith('.zst')) return unzstdChunks(compressed, file.path);
  return compressed;
}

/** Each chunk is a fresh buffer, because decoders and the line splitter keep references to earlier chunks. */
async function* fileChunks(filePath: string, onBytes?: (bytes: number) => void): AsyncGenerator<Buffer> {
  const handle = await open(filePath, 'r').catch((err: unknown) => {
    throw new UserError(`cannot read corpus file ${filePath} (${describeError(err)})`);
  });
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null).catch((err: unknown) => {
        throw new UserError(`cannot read corpus file ${filePath} (${describeError(err)})`);
      });
      if (bytesRead === 0) return;
      onBytes?.(bytesRead);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function* gunzipChunks(compressed: AsyncIterable<Buffer>, filePath: string): AsyncGenerator<Uint8Array> {
  // pipeline() destroys the gunzip stream with the source's error too, so the loop below sees every failure;
  // the byte-mode source keeps read-ahead to about one chunk.
  const source = Readable.from(compressed, { objectMode: false, highWaterMark: READ_CHUNK_BYTES });
  const gunzip = pipeline(source, createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), () => {});
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw asUserError(err, `${filePath}: corrupt or truncated gzip data`);
  }
}

function unzstdChunks(compressed: AsyncIterable<Buffer>, filePath: string): AsyncGenerator<Uint8Array> {
  return systemZstdAvailable() ? systemUnzstdChunks(compressed, filePath) : jsUnzstdChunks(compressed, filePath);
}

/**
 * Decompression in the system's `zstd` (when on PATH and FR_SPEC_ZSTD is not "js"): 2-4x faster than the pure-JS
 * decoder, runs on another core, and immune to fzstd 0.1.1's bug with match offsets beyond ~96 MiB in
 * long-window frames. Compressed bytes are piped in from here so progress reporting stays the same.
 */
async function* systemUnzstdChunks(compressed: AsyncIterable<Buffer>, filePath: string): AsyncGenerator<Uint8Array> {
  const child = spawn('zstd', ['-dcq', '--memory=2048MB'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const feeding = (async () => {
    try {
      for await (const chunk of compressed) {
        if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
      }
    } finally {
      child.stdin.end();
    }
  })();
  feeding.catch(() => child.kill());
  child.stdin.on('error', () => {});
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    await feeding;
    const code = await exited;
    if (code !== 0) throw new UserError(`${filePath}: corrupt or truncated zstd data (${stderr.trim().split('\n').pop() || `zstd exit code ${code}`})`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

let systemZstd: boolean | undefined;
function systemZstdAvailable(): boolean {
  if (systemZstd === undefined) {
    systemZstd = process.env.FR_SPEC_ZSTD !== 'js' && spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
  }
  return systemZstd;
}

async function* jsUnzstdChunks(compressed: AsyncIterable<Buffer>, filePath: string): AsyncGenerator<Uint8Array> {
  const zstd = new ZstdStream();
  const decode = (step: () => Uint8Array[]): Uint8Array[] => {
    try {
      return step();
    } catch (err) {
      throw asUserError(err, `${filePath}: corrupt or truncated zstd data`);
    }
  };
  for await (const chunk of compressed) yield* decode(() => zstd.push(chunk));
  yield* decode(() => zstd.finish());
}

async function* jsonlDocuments(
  file: CorpusFile,
  chunks: AsyncIterable<Uint8Array>,
  opts: ReadOptions,
): AsyncGenerator<CorpusDocument> {
  const splitter = new LineSplitter();
  let lineNumber = 0;
  const documentsOf = (lines: string[]): CorpusDocument[] => {
    const documents: CorpusDocument[] = [];
    for (const line of lines) {
      lineNumber += 1;
      const document = parseJsonlLine(file.path, lineNumber, line, opts);
      if (document) documents.push(document);
    }
    return documents;
  };
  // Lines are parsed a chunk at a time (at most READ_CHUNK_BYTES of text) to keep per-line overhead low.
  for await (const chunk of chunks) yield* documentsOf(splitter.push(chunk));
  yield* documentsOf(splitter.end());
}

/** The document on a JSONL line; undefined for a blank line or a bad line that is skipped. */
function parseJsonlLine(filePath: string, lineNumber: number, line: string, opts: ReadOptions): CorpusDocument | undefined {
  const json = lineNumber === 1 && line.startsWith(BYTE_ORDER_MARK) ? line.slice(1) : line;
  if (json.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    const reason = `malformed JSON line (${shortParserReason(err)})`;
    return badLine(filePath, lineNumber, reason, `${reason}; use --skip-bad-lines to skip such lines`, opts);
  }
  const text = (value as { text?: unknown } | null)?.text;
  if (typeof text !== 'string') {
    const reason = 'expected a JSON object with a string "text" field';
    return badLine(filePath, lineNumber, reason, reason, opts);
  }
  return { text, setName: setNameOf(value as { meta?: unknown }), file: filePath, line: lineNumber };
}

function badLine(filePath: string, lineNumber: number, reason: string, message: string, opts: ReadOptions): undefined {
  if (!opts.skipBadLines) throw new UserError(`${filePath}:${lineNumber}: ${message}`);
  opts.onBadLine?.(filePath, lineNumber, reason);
  return undefined;
}

function setNameOf(value: { meta?: unknown }): string {
  const setName = (value.meta as { redpajama_set_name?: unknown } | null | undefined)?.redpajama_set_name;
  return typeof setName === 'string' ? setName : 'unknown';
}

/** V8's message without the quoted excerpt of the input it may carry, which can be long or span lines. */
function shortParserReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const withoutExcerpt = message.replace(/, ".*" is not valid JSON$/s, '').replace(/\s+/g, ' ');
  return withoutExcerpt.length > 100 ? `${withoutExcerpt.slice(0, 100)}…` : withoutExcerpt;
}

async function* textDocument(file: CorpusFile, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<CorpusDocument> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const decoded = Buffer.concat(parts).toString('utf8');
  const text = decoded.startsWith(BYTE_ORDER_MARK) ? decoded.slice(1) : decoded;
  if (text.length > 0) yield { text, setName: 'txt', file: file.path, line: 1 };
}

/**
 * Cuts a byte stream into lines without the line feed (and without a carriage return before it).
 * It splits bytes, not text: a line feed byte never occurs inside a multi-byte UTF-8 sequence, so decoding
 * whole lines is correct however the chunks cut characters.
 */
export class LineSplitter {
  /** Pieces of the line that the chunks so far have begun but not ended. */
  private pending: Uint8Array[] = [];

  /** The lines that `chunk` completes, blank ones included. */
  push(chunk: Uint8Array): string[] {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: string[] = [];
    let start = 0;
    for (let end = bytes.indexOf(LINE_FEED); end !== -1; end = bytes.indexOf(LINE_FEED, start)) {
      lines.push(this.finishLine(bytes, start, end));
      start = end + 1;
    }
    if (start < bytes.length) this.pending.push(bytes.subarray(start));
    return lines;
  }

  /** The last line when the input did not end with a line feed. */
  end(): string[] {
    if (this.pending.length === 0) return [];
    const last = Buffer.concat(this.pending);
    this.pending = [];
    return [decodeLine(last, 0, last.length)];
  }

  private finishLine(bytes: Buffer, start: number, end: number): string {
    if (this.pending.length === 0) return decodeLine(bytes, start, end);
    const line = Buffer.concat([...this.pending, bytes.subarray(start, end)]);
    this.pending = [];
    return decodeLine(line, 0, line.length);
  }
}

function decodeLine(bytes: Buffer, start: number, end: number): string {
  const contentEnd = end > start && bytes[end - 1] === CARRIAGE_RETURN ? end - 1 : end;
  return bytes.toString('utf8', start, contentEnd);
}

function asUserError(err: unknown, message: string): UserError {
  if (err instanceof UserError) return err;
  return new UserError(`${message} (${describeError(err)})`);
}

function describeError(err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return typeof message === 'string' ? message : String(err);
}
