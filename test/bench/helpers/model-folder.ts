/** A model folder with the contract's config.json and empty graph files: enough for the bench's checks, never loaded. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface FakeFolderOptions {
  eagle?: boolean;
  draft?: boolean;
  vocabSizes?: number[];
  /** Changes config.json (and so the model's identity). */
  source?: string;
}

export function makeTempDir(prefix = 'fr-spec-bench-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeModelFolder(dir: string, options: FakeFolderOptions = {}): string {
  const { eagle = true, draft = true, vocabSizes = [8, 16], source = 'tiny-target' } = options;
  fs.mkdirSync(path.join(dir, 'vocab-maps'), { recursive: true });
  const architecture = { model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_layers: 1, num_heads: 2, num_kv_heads: 1, head_dim: 4, vocab_size: 64, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: { type: 'default' }, tie_word_embeddings: false };
  const config = {
    format: 'fr-spec-model',
    contract_version: 1,
    created_by: 'test',
    dtype: 'float32',
    vocab_size: 64,
    hidden_size: 8,
    target: { file: 'target.onnx', source, architecture },
    lm_head: { file: 'lm_head.onnx', vocab_size: 64, hidden_size: 8 },
    ...(eagle && { eagle: { file: 'eagle.onnx', source: 'tiny-eagle', architecture: {} } }),
    ...(draft && { draft: { file: 'draft.onnx', source: 'tiny-draft', architecture } }),
    tokenizer_files: [],
    bos_token_id: null,
    eos_token_ids: [0],
    vocab_maps: vocabSizes.map((r) => `vocab-maps/freq_${r}.json`),
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const file of ['target.onnx', 'lm_head.onnx', ...(eagle ? ['eagle.onnx'] : []), ...(draft ? ['draft.onnx'] : [])]) fs.writeFileSync(path.join(dir, file), '');
  for (const r of vocabSizes) fs.writeFileSync(path.join(dir, 'vocab-maps', `freq_${r}.json`), JSON.stringify(Array.from({ length: r }, (_, i) => i)));
  return dir;
}

export function writeJsonl(file: string, records: unknown[]): string {
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}
