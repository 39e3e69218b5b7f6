import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Papa from 'papaparse';
import { writeFolderAtomically } from '../util/atomic-folder.js';
import type { TokenCounts } from './rank.js';

export interface WriteOutputOptions {
  /** Replace an existing output folder instead of failing. */
  force?: boolean;
}

/**
 * Writes `files` (name relative to the folder → contents) so that `outDir` either holds all of them
 * or is left as it was (see writeFolderAtomically).
 */
export async function writeOutputDir(
  outDir: string,
  files: Map<string, string | Uint8Array>,
  opts: WriteOutputOptions = {},
): Promise<void> {
  for (const name of files.keys()) assertRelativeFileName(name);
  await writeFolderAtomically(outDir, opts.force, (dir) => writeFilesInto(dir, files));
}

function assertRelativeFileName(name: string): void {
  const parts = name.split(/[/\\]/);
  if (name === '' || path.isAbsolute(name) || parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw new RangeError(`output file name "${name}" must be a plain relative path`);
  }
}

async function writeFilesInto(dir: string, files: Map<string, string | Uint8Array>): Promise<void> {
  for (const [name, contents] of files) {
    const filePath = path.join(dir, name);
    await mkdir(path.dirname(filePath), { recursive: true });
    await writeFile(filePath, contents);
  }
}

// ---------------------------------------------------------------------------------------------
// File contents

/**
 * The full count table, one row per vocabulary id in rank order (zero counts included), so subsets
 * of any size can be cut later without recounting. Columns: rank (1-based), token_id, count, token.
 */
export function countsCsv(
  ranked: ArrayLike<number>,
  counts: TokenCounts,
  idToToken: (id: number) => string | undefined,
): string {
  const rows: (string | number)[][] = [];
  for (let i = 0; i < ranked.length; i++) {
    const id = ranked[i];
    rows.push([i + 1, id, counts[id], idToToken(id) ?? '']);
  }
  const csv = Papa.unparse({ fields: ['rank', 'token_id', 'count', 'token'], data: rows }, { newline: '\n' });
  return `${csv}\n`;
}

/** The subset's ids as a JSON array, in subset order. */
export function freqJson(ids: ArrayLike<number>): string {
  return `${JSON.stringify(Array.from(ids))}\n`;
}
