/**
 * Random-weight Hugging Face checkpoints of a real model's shape (a target, an EAGLE head and a plain draft model), for
 * timing where no trained weights of that size exist: a decoding step reads the same bytes and runs
 * the same kernels whatever the weights' values, so tokens/s of vanilla decoding and the cost of one
 * speculative cycle (fixed tree shape) are those of the real model. Acceptance lengths are not:
 * a random EAGLE head drafts almost nothing the random target accepts.
 *
 *   node --import tsx bench/gpu/random-model.ts OUT [--shape llama3-8b] [--tokenizer models/demo]
 *
 * Writes OUT/target, OUT/eagle and OUT/draft (config.json, fp16 safetensors shards, one per layer), with the
 * tokenizer files of --tokenizer (the Llama-3 tokenizer of the demo models by default). Weights are
 * a pool of N(0, 0.02²) fp16 values tiled from a random offset per tensor (writing 16 GB of fresh
 * random numbers would take minutes); norm weights are ones.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SeededRandom } from '../../src/engine/random.js';
import { float32ToFloat16Bits } from '../../src/model/half-precision.js';
import { writeSafetensors, type HostTensor } from '../../src/model/safetensors.js';

interface Shape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  ropeTheta: number;
  tied: boolean;
}

const BENCH: Shape = { hidden: 1024, intermediate: 2816, layers: 12, heads: 16, kvHeads: 4, vocab: 128256, ropeTheta: 10000, tied: true };
/** Each target shape and the plain draft model SpS pairs with it. */
const SHAPES: Record<string, { target: Shape; draft: Shape }> = {
  /** Meta-Llama-3-8B's config.json; its draft Llama-3.2-1B's (the same tokenizer). */
  'llama3-8b': {
    target: { hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, vocab: 128256, ropeTheta: 500000, tied: false },
    draft: { hidden: 2048, intermediate: 8192, layers: 16, heads: 32, kvHeads: 8, vocab: 128256, ropeTheta: 500000, tied: true },
  },
  /** training/frspec_train/presets.py's bench target, and its draft (the target's shape with 2 layers). */
  bench: { target: BENCH, draft: { ...BENCH, layers: 2 } },
};

const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { shape: { type: 'string', default: 'llama3-8b' }, tokenizer: { type: 'string', default: 'models/demo' } } });
const out = positionals[0];
const shape = SHAPES[flags.shape]?.target;
const draftShape = SHAPES[flags.shape]?.draft;
if (!out || !shape || !draftShape) throw new Error(`usage: random-model.ts OUT [--shape ${Object.keys(SHAPES).join('|')}] [--tokenizer DIR]`);

const POOL = 1 << 24;
const random = new SeededRandom(8);
const pool = float32ToFloat16Bits(Float32Array.from({ length: POOL }, () => 0.02 * gaussian()));
function gaussian(): number {
  const u = Math.max(random.uniform(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.uniform());
}
function randomTensor(dims: number[]): HostTensor<'F16'> {
  const length = dims.reduce((a, b) => a * b, 1);
  const data = new Uint16Array(length);
  let at = Math.floor(random.uniform() * POOL);
  for (let filled = 0; filled < length; ) {
    const n = Math.min(POOL - at, length - filled);
    data.set(pool.subarray(at, at + n), filled);
    filled += n;
    at = 0;
  }
  return { dtype: 'F16', shape: dims, data };
}
const ones = (n: number): HostTensor<'F16'> => ({ dtype: 'F16', shape: [n], data: new Uint16Array(n).fill(0x3c00) });

function layerTensors(prefix: string, s: Shape, inputNorm: boolean): Record<string, HostTensor> {
  const d = s.hidden;
  const headDim = d / s.heads;
  return {
    ...(inputNorm && { [`${prefix}.input_layernorm.weight`]: ones(d) }),
    [`${prefix}.self_attn.q_proj.weight`]: randomTensor([s.heads * headDim, d]),
    [`${prefix}.self_attn.k_proj.weight`]: randomTensor([s.kvHeads * headDim, d]),
    [`${prefix}.self_attn.v_proj.weight`]: randomTensor([s.kvHeads * headDim, d]),
    [`${prefix}.self_attn.o_proj.weight`]: randomTensor([d, s.heads * headDim]),
    [`${prefix}.post_attention_layernorm.weight`]: ones(d),
    [`${prefix}.mlp.gate_proj.weight`]: randomTensor([s.intermediate, d]),
    [`${prefix}.mlp.up_proj.weight`]: randomTensor([s.intermediate, d]),
    [`${prefix}.mlp.down_proj.weight`]: randomTensor([d, s.intermediate]),
  };
}

/** One safetensors shard per group of tensors, and the index that maps names to shards. */
function writeCheckpoint(dir: string, config: object, groups: Record<string, HostTensor>[], extraFiles: string[] = []): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const weightMap: Record<string, string> = {};
  groups.forEach((tensors, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    writeSafetensors(join(dir, file), tensors);
    for (const name of Object.keys(tensors)) weightMap[name] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const file of extraFiles) if (existsSync(join(flags.tokenizer, file))) copyFileSync(join(flags.tokenizer, file), join(dir, file));
}

const decoderConfig = (s: Shape, layers: number) => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: s.hidden,
  intermediate_size: s.intermediate,
  num_hidden_layers: layers,
  num_attention_heads: s.heads,
  num_key_value_heads: s.kvHeads,
  rms_norm_eps: 1e-5,
  rope_theta: s.ropeTheta,
  max_position_embeddings: 8192,
  vocab_size: s.vocab,
  tie_word_embeddings: s.tied,
  bos_token_id: 128000,
  eos_token_id: 128001,
});

/** A Llama decoder checkpoint of shape `s`, with the tokenizer files. */
function writeDecoder(dir: string, s: Shape): void {
  writeCheckpoint(
    dir,
    decoderConfig(s, s.layers),
    [
      { 'model.embed_tokens.weight': randomTensor([s.vocab, s.hidden]), 'model.norm.weight': ones(s.hidden), ...(!s.tied && { 'lm_head.weight': randomTensor([s.vocab, s.hidden]) }) },
      ...Array.from({ length: s.layers }, (_, i) => layerTensors(`model.layers.${i}`, s, true)),
    ],
    ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'],
  );
}

const started = performance.now();
const d = shape.hidden;
writeDecoder(join(out, 'target'), shape);
writeCheckpoint(join(out, 'eagle'), { ...decoderConfig(shape, 1), bias: false }, [{ 'fc.weight': randomTensor([d, 2 * d]), ...layerTensors('layers.0', shape, false) }]);
writeDecoder(join(out, 'draft'), draftShape);
process.stdout.write(`wrote ${flags.shape} random checkpoints to ${out}/{target,eagle,draft} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
