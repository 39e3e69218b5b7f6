import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { UserError } from '../../util/errors.js';

export interface JsonlRecord {
  /** 1-based line number, for messages. */
  line: number;
  value: Record<string, unknown>;
}

export interface JsonlFile {
  path: string;
  sha256: string;
  records: JsonlRecord[];
}

/** Reads a whole JSONL file of objects (benchmark files are small); blank lines are skipped. */
export function readJsonlFile(file: string): JsonlFile {
  const stats = statSync(file, { throwIfNoEntry: false });
  if (!stats) throw new UserError(`${file}: no such file`);
  if (!stats.isFile()) throw new UserError(`${file}: not a file (expected a .jsonl file)`);
  const bytes = readFileSync(file);
  const records: JsonlRecord[] = [];
  bytes
    .toString('utf8')
    .split('\n')
    .forEach((text, index) => {
      if (text.trim() === '') return;
      const line = index + 1;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new UserError(`${file}:${line}: not valid JSON (${(error as Error).message}); expected one JSON object per line`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${file}:${line}: expected a JSON object`);
      records.push({ line, value: value as Record<string, unknown> });
    });
  if (records.length === 0) throw new UserError(`${file}: no questions (the file is empty)`);
  return { path: file, sha256: createHash('sha256').update(bytes).digest('hex'), records };
}
