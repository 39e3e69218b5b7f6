/** A Hugging Face model folder as export reads it: config.json, safetensors weights, tokenizer files. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import { SafetensorsCheckpoint } from './checkpoint.js';

export interface HfFolder {
  dir: string;
  /** The folder's name, recorded in the model folder as the graph's source. */
  name: string;
  config: Record<string, unknown>;
  checkpoint: SafetensorsCheckpoint;
}

/** Opens `dir`; `role` (e.g. "--target") prefixes every error so the user knows which folder failed. */
export function openHfFolder(dir: string, role: string): HfFolder {
  const folder = resolve(dir);
  return withContext(`${role} ${dir}`, () => {
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UserError('no such folder');
    const configPath = join(folder, 'config.json');
    if (!existsSync(configPath)) throw new UserError('no config.json (expected a Hugging Face model folder)');
    let config: unknown;
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (error) {
      throw new UserError(`config.json is not valid JSON (${(error as Error).message})`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new UserError('config.json is not a JSON object');
    return { dir: folder, name: basename(folder), config: config as Record<string, unknown>, checkpoint: SafetensorsCheckpoint.open(folder) };
  });
}

/** Runs `work`, prefixing the message of any UserError it throws with `context: `. */
export function withContext<T>(context: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof UserError && !error.message.startsWith(context)) throw new UserError(`${context}: ${error.message}`, error.exitCode);
    throw error;
  }
}

/** Reads an optional JSON file of the folder; undefined when absent or unreadable. */
export function readOptionalJson(dir: string, file: string): Record<string, unknown> | undefined {
  const path = join(dir, file);
  if (!existsSync(path)) return undefined;
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
