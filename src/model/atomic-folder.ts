/**
 * Creates an output folder all at once: the contents are written into a temporary sibling folder
 * that is renamed into place only when complete, so a failed or interrupted export never leaves a
 * half-written model folder. (src/vocab/output.ts does the same for contents held in memory; model
 * weights are too large for that, so here the caller writes files into the folder itself.)
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { trackTempPath, untrackTempPath } from '../vocab/output.js';

export function assertOutputFolderFree(outDir: string, force: boolean | undefined): void {
  if (!force && existsSync(outDir)) throw new UserError(`output folder ${outDir} already exists; use --force to replace it`);
}

/** Runs `fill(tempDir)`, then moves the folder to `outDir` (replacing it only with `force`). */
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

/** Two renames; if the second fails the old folder is put back. */
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
