/** Writes tiny Hugging Face checkpoint folders (config.json + safetensors) for the export tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { float32ToBfloat16Bits, float32ToFloat16Bits } from '../../../src/model/half-precision.js';
import { writeSafetensors, type HostTensor } from '../../../src/model/safetensors.js';
import type { MapWeights } from './reference-llama.js';

export interface WriteCheckpointOptions {
  /** Split the weights over this many shards with a model.safetensors.index.json. Default 1. */
  shards?: number;
  /** Stored dtype. Default F32 (exact). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** The single file's name when not sharded. Default model.safetensors. */
  fileName?: string;
  /** Extra files to write into the folder (name → contents). */
  extraFiles?: Record<string, string>;
}

function stored(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): HostTensor {
  if (dtype === 'F32') return { dtype, shape: [], data };
  return { dtype, shape: [], data: dtype === 'F16' ? float32ToFloat16Bits(data) : float32ToBfloat16Bits(data) };
}

export function writeHfCheckpoint(dir: string, config: object, weights: MapWeights, options: WriteCheckpointOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const shardCount = options.shards ?? 1;
  const shards: Record<string, HostTensor>[] = Array.from({ length: shardCount }, () => ({}));
  const weightMap: Record<string, string> = {};
  const shardName = (i: number) => (shardCount === 1 ? (options.fileName ?? 'model.safetensors') : `model-${String(i + 1).padStart(5, '0')}-of-${String(shardCount).padStart(5, '0')}.safetensors`);
  [...weights.tensors].forEach(([name, tensor], i) => {
    shards[i % shardCount][name] = { ...stored(tensor.data, options.dtype ?? 'F32'), shape: tensor.shape };
    weightMap[name] = shardName(i % shardCount);
  });
  shards.forEach((tensors, i) => writeSafetensors(join(dir, shardName(i)), tensors));
  if (shardCount > 1) writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const [name, contents] of Object.entries(options.extraFiles ?? {})) writeFileSync(join(dir, name), contents);
  return dir;
}
