/**
 * A Hugging Face checkpoint's weights: a single `model.safetensors` or shards listed in
 * `model.safetensors.index.json` (`{"weight_map": {tensor name: shard file}}`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/errors.js';
import { SafetensorsFile, type Float32Tensor, type HostTensor, type TensorInfo } from './safetensors.js';

export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';

/** Read access to weights by their Hugging Face names. */
export interface WeightSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): HostTensor;
  readFloat32(name: string): Float32Tensor;
}

function pickleError(path: string): UserError {
  return new UserError(`${path}: PyTorch .bin checkpoints are not supported; convert to safetensors`);
}

function isPickleFile(name: string): boolean {
  return /\.(bin|pt|pth)$/.test(name) || name.endsWith('.bin.index.json');
}

export class SafetensorsCheckpoint implements WeightSource {
  private constructor(
    /** The folder or file it was opened from. */
    readonly path: string,
    private readonly fileOf: Map<string, SafetensorsFile>,
  ) {}

  /** Opens a checkpoint folder, a `.safetensors` file, or a `model.safetensors.index.json`. */
  static open(path: string): SafetensorsCheckpoint {
    if (!existsSync(path)) throw new UserError(`${path}: no such file or folder`);
    if (statSync(path).isDirectory()) return SafetensorsCheckpoint.openFolder(path);
    if (isPickleFile(basename(path))) throw pickleError(path);
    if (path.endsWith('.index.json')) return SafetensorsCheckpoint.openIndex(path);
    if (path.endsWith('.safetensors')) return SafetensorsCheckpoint.fromFiles(path, [SafetensorsFile.open(path)]);
    throw new UserError(`${path}: expected a .safetensors file, a ${INDEX_FILE_NAME} or a checkpoint folder`);
  }

  private static openFolder(folder: string): SafetensorsCheckpoint {
    const index = join(folder, INDEX_FILE_NAME);
    if (existsSync(index)) return SafetensorsCheckpoint.openIndex(index);
    const single = join(folder, SINGLE_FILE_NAME);
    if (existsSync(single)) return SafetensorsCheckpoint.fromFiles(folder, [SafetensorsFile.open(single)]);
    const entries = readdirSync(folder).sort();
    // Some checkpoints (EAGLE heads among them) name their single file differently.
    const safetensorsFiles = entries.filter((name) => name.endsWith('.safetensors'));
    if (safetensorsFiles.length > 0) {
      return SafetensorsCheckpoint.fromFiles(folder, safetensorsFiles.map((name) => SafetensorsFile.open(join(folder, name))));
    }
    const pickle = entries.find(isPickleFile);
    if (pickle) throw pickleError(join(folder, pickle));
    throw new UserError(`${folder}: no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} found`);
  }

  private static openIndex(indexPath: string): SafetensorsCheckpoint {
    let weightMap: Record<string, unknown>;
    try {
      const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, unknown> };
      if (typeof index.weight_map !== 'object' || index.weight_map === null) throw new Error('no weight_map object');
      weightMap = index.weight_map;
    } catch (error) {
      throw new UserError(`${indexPath}: malformed checkpoint index (${(error as Error).message})`);
    }
    const folder = dirname(indexPath);
    const shards = new Map<string, SafetensorsFile>();
    const fileOf = new Map<string, SafetensorsFile>();
    for (const [name, shardName] of Object.entries(weightMap)) {
      if (typeof shardName !== 'string') throw new UserError(`${indexPath}: weight_map entry for ${name} is not a file name`);
      let shard = shards.get(shardName);
      if (!shard) {
        const shardPath = join(folder, shardName);
        if (!existsSync(shardPath)) throw new UserError(`${indexPath}: shard ${shardName} is missing (it holds ${name})`);
        shard = SafetensorsFile.open(shardPath);
        shards.set(shardName, shard);
      }
      if (!shard.has(name)) throw new UserError(`${indexPath}: ${name} is listed in ${shardName} but that shard has no such tensor`);
      fileOf.set(name, shard);
    }
    return new SafetensorsCheckpoint(indexPath, fileOf);
  }

  private static fromFiles(path: string, files: SafetensorsFile[]): SafetensorsCheckpoint {
    const fileOf = new Map<string, SafetensorsFile>();
    for (const file of files) {
      for (const name of file.names()) {
        const other = fileOf.get(name);
        if (other) throw new UserError(`${path}: tensor ${name} is in both ${basename(other.path)} and ${basename(file.path)}`);
        fileOf.set(name, file);
      }
    }
    return new SafetensorsCheckpoint(path, fileOf);
  }

  names(): string[] {
    return [...this.fileOf.keys()];
  }

  has(name: string): boolean {
    return this.fileOf.has(name);
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  read(name: string): HostTensor {
    return this.file(name).read(name);
  }

  readFloat32(name: string): Float32Tensor {
    return this.file(name).readFloat32(name);
  }

  private file(name: string): SafetensorsFile {
    const file = this.fileOf.get(name);
    if (!file) throw new UserError(`${this.path}: the checkpoint has no tensor named ${name}`);
    return file;
  }
}
