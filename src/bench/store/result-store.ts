/**
 * An output folder of `fr-spec bench`: bench.json describes the measurement, results.jsonl holds one
 * line per finished (method, question, run), appended and synced as soon as it is done, so an
 * interrupted run loses at most the generation in flight and a rerun skips what is there.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.js';
import { writeFileAtomic } from '../atomic-write.js';
import { BENCH_FORMAT, BENCH_FORMAT_VERSION, type BenchMeta, type PairRecord } from './records.js';
import { checkCompatible } from './compatibility.js';

export const META_FILE = 'bench.json';
export const RECORDS_FILE = 'results.jsonl';

const pairKey = (method: string, question: string, run: number) => JSON.stringify([method, question, run]);

export interface SavedResults {
  dir: string;
  meta: BenchMeta;
  records: PairRecord[];
}

/** Reads a folder written by `fr-spec bench` (for `bench report`). */
export function readSavedResults(dir: string): SavedResults {
  const resolved = path.resolve(dir);
  const metaFile = path.join(resolved, META_FILE);
  if (!existsSync(metaFile)) throw new UserError(`${dir}: not a bench output folder (no ${META_FILE})`);
  return { dir: resolved, meta: readMeta(metaFile), records: readRecords(path.join(resolved, RECORDS_FILE)).records };
}

function readMeta(file: string): BenchMeta {
  let meta: BenchMeta;
  try {
    meta = JSON.parse(readFileSync(file, 'utf8')) as BenchMeta;
  } catch (error) {
    throw new UserError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (meta?.format !== BENCH_FORMAT) throw new UserError(`${file}: not written by fr-spec bench`);
  if (meta.version !== BENCH_FORMAT_VERSION) throw new UserError(`${file}: format version ${meta.version} is not the one this fr-spec reads (${BENCH_FORMAT_VERSION})`);
  return meta;
}

/** The records, and the text of the complete lines (a line cut short by a crash is left out). */
function readRecords(file: string): { records: PairRecord[]; intactText: string; intact: boolean } {
  if (!existsSync(file)) return { records: [], intactText: '', intact: true };
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const records: PairRecord[] = [];
  let intactText = '';
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === '') continue;
    try {
      records.push(JSON.parse(lines[i]) as PairRecord);
      intactText += lines[i] + '\n';
    } catch (error) {
      if (i === lines.length - 1) break;
      throw new UserError(`${file}:${i + 1}: damaged record (${(error as Error).message}); delete that line to measure it again`);
    }
  }
  return { records, intactText, intact: intactText === text };
}

export class ResultStore {
  private readonly done = new Set<string>();
  private fd?: number;

  private constructor(
    readonly dir: string,
    private meta: BenchMeta,
    readonly records: PairRecord[],
  ) {
    for (const r of records) this.done.add(pairKey(r.method, r.question, r.run));
  }

  /**
   * Opens `dir` for `meta`'s measurement: creates it, or resumes it when it holds results of the
   * same model, data and settings (and refuses otherwise). Methods, runs and questions may grow.
   */
  static open(dir: string, meta: BenchMeta): ResultStore {
    const resolved = path.resolve(dir);
    const metaFile = path.join(resolved, META_FILE);
    if (existsSync(resolved) && !existsSync(metaFile) && readdirSync(resolved).length > 0) {
      throw new UserError(`${dir} exists and is not an output folder of fr-spec bench (no ${META_FILE}); use a new or empty --out`);
    }
    mkdirSync(resolved, { recursive: true });
    const recordsFile = path.join(resolved, RECORDS_FILE);
    let merged = meta;
    if (existsSync(metaFile)) {
      const saved = readMeta(metaFile);
      checkCompatible(dir, saved, meta);
      merged = {
        ...meta,
        createdAt: saved.createdAt,
        updatedAt: saved.updatedAt,
        methods: [...saved.methods, ...meta.methods.filter((m) => !saved.methods.includes(m))],
        runs: Math.max(saved.runs, meta.runs),
      };
    }
    const { records, intactText, intact } = readRecords(recordsFile);
    // Drops a torn last line, so the next append starts on a line of its own.
    if (!intact) writeFileAtomic(recordsFile, intactText);
    writeFileAtomic(metaFile, JSON.stringify(merged, null, 2) + '\n');
    return new ResultStore(resolved, merged, records);
  }

  get benchMeta(): BenchMeta {
    return this.meta;
  }

  has(method: string, question: string, run: number): boolean {
    return this.done.has(pairKey(method, question, run));
  }

  append(record: PairRecord): void {
    const key = pairKey(record.method, record.question, record.run);
    if (this.done.has(key)) throw new Error(`${key} is already stored`);
    this.fd ??= openSync(path.join(this.dir, RECORDS_FILE), 'a');
    const bytes = Buffer.from(JSON.stringify(record) + '\n');
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written);
    fsyncSync(this.fd);
    this.records.push(record);
    this.done.add(key);
  }

  /** Stamps bench.json with the time of the last change. */
  touch(updatedAt: string): void {
    this.meta = { ...this.meta, updatedAt };
    writeFileAtomic(path.join(this.dir, META_FILE), JSON.stringify(this.meta, null, 2) + '\n');
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
