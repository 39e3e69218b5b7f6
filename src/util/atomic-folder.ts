/**
 * Output folders that appear all at once: contents are written into a temporary sibling folder that is
 * renamed into place only when complete, so a failed or interrupted run never leaves a half-written folder.
 * Temporary paths are removed on Ctrl-C, SIGTERM and exit.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './errors.js';

export function assertOutputFolderFree(outDir: string, force: boolean | undefined): void {
  if (!force && existsSync(outDir)) throw new UserError(`output folder ${outDir} already exists; use --force to replace it`);
}

/**
 * Runs `fill(tempDir)`, then moves the folder to `outDir`. With `force`, an existing folder is moved aside,
 * replaced, then removed.
 */
export async function writeFolderAtomically<T>(outDir: string, force: boolean | undefined, fill: (dir: string) => Promise<T>): Promise<T> {
  const target = path.resolve(outDir);
  assertOutputFolderFree(outDir, force);
  await mkdir(path.dirname(target), { recursive: true });
  const tempDir = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  trackTempPath(tempDir);
  try {
    await mkdir(tempDir);
    const result = await fill(tempDir);
    assertOutputFolderFree(outDir, force);
    if (existsSync(target)) await replaceFolder(target, tempDir);
    else await rename(tempDir, target);
    return result;
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    untrackTempPath(tempDir);
  }
}

/**
 * Swaps the new folder in with two renames; if the second fails the old folder is put back. The old folder is
 * not tracked for cleanup until the new one is in place, so an interrupt between the renames leaves it
 * recoverable at `<temp>-old`.
 */
async function replaceFolder(target: string, newDir: string): Promise<void> {
  const oldDir = `${newDir}-old`;
  await rename(target, oldDir);
  try {
    await rename(newDir, target);
  } catch (error) {
    await rename(oldDir, target);
    throw error;
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
