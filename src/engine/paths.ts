/** Where the repository's shipped assets live, wherever fr-spec is run from. */
import { fileURLToPath } from 'node:url';

const repoPath = (relative: string) => fileURLToPath(new URL(`../../${relative}`, import.meta.url));

/** The demo model set `generate` uses without --model. */
export const DEMO_MODEL_DIR = repoPath('models/demo');

/** Frequency maps shipped per tokenizer: vocab-maps/<tokenizer>/freq_{r}.json + manifest.json. */
export const REPO_VOCAB_MAPS_DIR = repoPath('vocab-maps');
