/**
 * Which onnxruntime-node to load and which execution provider to use.
 *
 * On a GPU host without network access, onnxruntime-node with its CUDA provider comes from the
 * offline GPU kit, and `FR_SPEC_ORT_DIR` names that package folder: it is loaded from there with
 * createRequire (ES modules ignore NODE_PATH). Otherwise the project's own node_modules copy is used.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';

export type Ort = typeof import('onnxruntime-node');
export type ExecutionProviderChoice = 'cuda' | 'cpu' | 'auto';
export type ExecutionProvider = 'cuda' | 'cpu';

export const ORT_DIR_VARIABLE = 'FR_SPEC_ORT_DIR';
const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';

const require = createRequire(import.meta.url);

/** The onnxruntime-node package folder that loadOrt() loads. */
export function ortPackageDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[ORT_DIR_VARIABLE];
  if (fromEnv) {
    if (!existsSync(join(fromEnv, 'package.json'))) throw new UserError(`${ORT_DIR_VARIABLE}=${fromEnv} is not an onnxruntime-node package folder (no package.json)`);
    return fromEnv;
  }
  // The package's main is dist/index.js, two levels below the package folder.
  return dirname(dirname(require.resolve('onnxruntime-node')));
}

let loaded: { dir: string; ort: Ort } | undefined;

/** onnxruntime-node, loaded once per process from ortPackageDir(). */
export function loadOrt(): Ort {
  const dir = ortPackageDir();
  if (loaded && loaded.dir !== dir) throw new Error(`onnxruntime-node was already loaded from ${loaded.dir}; cannot switch to ${dir} in the same process`);
  loaded ??= { dir, ort: require(dir) as Ort };
  return loaded.ort;
}

/** Where the CUDA provider library would have to be for onnxruntime-node in `ortDir` to find it. */
export function cudaProviderPath(ortDir: string): string {
  return join(ortDir, 'bin', 'napi-v6', process.platform, process.arch, CUDA_PROVIDER_LIBRARY);
}

export function hasCudaProvider(env: NodeJS.ProcessEnv = process.env): boolean {
  return process.platform === 'linux' && process.arch === 'x64' && existsSync(cudaProviderPath(ortPackageDir(env)));
}

/** auto = cuda when its provider library is installed, else cpu; an explicit cuda must be installed. */
export function resolveExecutionProvider(choice: ExecutionProviderChoice, env: NodeJS.ProcessEnv = process.env): ExecutionProvider {
  if (choice === 'cpu') return 'cpu';
  if (hasCudaProvider(env)) return 'cuda';
  if (choice === 'auto') return 'cpu';
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new UserError(`the CUDA execution provider of onnxruntime-node exists only for linux/x64 (this is ${process.platform}/${process.arch}); use --ep cpu`);
  }
  throw new UserError(
    `the CUDA execution provider is not installed (no ${cudaProviderPath(ortPackageDir(env))}); ` +
      `run \`npm run install-cuda\` on a host with network access, or unpack the offline GPU kit and set ${ORT_DIR_VARIABLE} (docs/model-contract.md, "Execution providers"), or use --ep cpu`,
  );
}
