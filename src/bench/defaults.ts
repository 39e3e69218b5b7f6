/** What `fr-spec bench` uses when it is not told: the demo models on the project's own prompts, on the CPU, short. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The demo model set (trained and exported by training/). */
export const DEMO_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'demo');

/** The project's own small prompt set (writing, qa, code, math). */
export const DEFAULT_PROMPTS = path.join(PACKAGE_ROOT, 'bench', 'prompts', 'default.jsonl');

/** Settings of the embedded run, sized to finish in well under two minutes on a laptop CPU. */
export const EMBEDDED_RUN = { maxNewTokens: 64, warmup: 1, ep: 'cpu' } as const;

/** Spec-Bench runs 3 warm-up generations before timing. */
export const DEFAULT_WARMUP = 3;

/** bench-results/<model>-<dataset>-<UTC date and time>: a fresh folder per run unless --out names one. */
export function defaultOutDir(modelDir: string, dataset: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const datasetName = path.basename(dataset, path.extname(dataset));
  return path.join('bench-results', `${path.basename(path.resolve(modelDir))}-${datasetName}-${stamp}`);
}
