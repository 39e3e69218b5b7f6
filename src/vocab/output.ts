import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Papa from 'papaparse';
import { UserError } from '../util/errors.js';
import type { TokenCounts } from './rank.js';

export interface WriteOutputOptions {
  /** Replace an existing output folder instead of failing. */
  force?: boolean;
}

/**
 * Writes `files` (name relative to the folder → contents) so that `outDir` either holds all of them
 * or is left as it was: everything goes into a temporary sibling folder first, which is renamed into
 * place at the end. With `force`, an existing folder is moved aside, replaced, then removed.
 */
export async function writeOutputDir(
  outDir: string,
  files: Map<string, string | Uint8Array>,
  opts: WriteOutputOptions = {},
): Promise<void> {
  const target = path.resolve(outDir);
  for (const name of files.keys()) assertRelativeFileName(name);
  if (!opts.force && existsSync(target)) throw alreadyExists(outDir);

  await mkdir(path.dirname(target), { recursive: true });
  const tempDir = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  trackTempPath(tempDir);
  try {
    await writeFilesInto(tempDir, files);
    if (existsSync(target)) {
      if (!opts.force) throw alreadyExists(outDir);
      await replaceExisting(target, tempDir);
    } else {
      await rename(tempDir, target);
    }
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    untrackTempPath(tempDir);
  }
}

function alreadyExists(outDir: string): UserError {
  return new UserError(`output folder ${outDir} already exists; use --force to replace it`);
}

function assertRelativeFileName(name: string): void {
  const parts = name.split(/[/\\]/);
  if (name === '' || path.isAbsolute(name) || parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw new RangeError(`output file name "${name}" must be a plain relative path`);
  }
}

async function writeFilesInto(dir: string, files: Map<string, string | Uint8Array>): Promise<void> {
  await mkdir(dir);
  for (const [name, contents] of files) {
    const filePath = path.join(dir, name);
    await mkdir(path.dirname(filePath), { recursive: true });
    await writeFile(filePath, contents);
  }
}

/**
 * Swaps the new folder in with two renames. The old folder is not tracked for cleanup until the new
 * one is in place, so an interrupt between the renames leaves it recoverable at `<temp>-old`.
 */
async function replaceExisting(target: string, newDir: string): Promise<void> {
  const oldDir = `${newDir}-old`;
  await rename(target, oldDir);
  try {
    await rename(newDir, target);
  } catch (err) {
    await rename(oldDir, target);
    throw err;
  }
  trackTempPath(oldDir);
  try {
    await rm(oldDir, { recursive: true, force: true });
  } finally {
    untrackTempPath(oldDir);
  }
}

// ---------------------------------------------------------------------------------------------
// Temporary paths removed on Ctrl-C, SIGTERM and exit, so an interrupted run leaves no partial output.

const trackedTempPaths = new Set<string>();
let cleanupInstalled = false;

export function trackTempPath(p: string): void {
  installCleanupHandlers();
  trackedTempPaths.add(path.resolve(p));
}

export function untrackTempPath(p: string): void {
  trackedTempPaths.delete(path.resolve(p));
}

function removeTrackedTempPaths(): void {
  for (const p of trackedTempPaths) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // Best effort: the process is going away and has no one left to report to.
    }
  }
  trackedTempPaths.clear();
}

function installCleanupHandlers(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', removeTrackedTempPaths);
  const exitOnSignal = (exitCode: number) => () => {
    removeTrackedTempPaths();
    process.exit(exitCode);
  };
  // Shells report death by signal N as 128 + N.
  process.on('SIGINT', exitOnSignal(130));
  process.on('SIGTERM', exitOnSignal(143));
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
