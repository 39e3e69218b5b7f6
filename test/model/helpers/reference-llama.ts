/**
 * A plain TypeScript Llama/Qwen2 forward pass over HF-named weights, with a KV cache in the
 * contract's layout ([tokens, kvHeads, headDim] per layer), and tiny random checkpoints for it.
 */
import type { DecoderArchitecture } from '../../../src/model/llama-config.js';
import { ropeInverseFrequencies } from '../../../src/model/onnx/rope.js';
import type { Float32Tensor } from '../../../src/model/safetensors.js';
import type { Float32WeightSource } from '../../../src/model/weight-loader.js';
import { applyRope, attention, concat, hfLinear, rmsNorm, Rng, swiGlu, type Values } from './reference-math.js';

export class MapWeights implements Float32WeightSource {
  constructor(readonly tensors: Map<string, Float32Tensor>) {}
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  readFloat32(name: string): Float32Tensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`no weight ${name}`);
    return tensor;
  }
  /** The same weights rounded through fp16: what an fp16 graph holds. */
  mapData(transform: (data: Float32Array) => Float32Array): MapWeights {
    return new MapWeights(new Map([...this.tensors].map(([name, t]) => [name, { shape: t.shape, data: transform(t.data) }])));
  }
}

/** Random weights with scales that keep activations O(1) and attention non-uniform. */
export function randomLlamaWeights(arch: DecoderArchitecture, seed: number): MapWeights {
  const rng = new Rng(seed);
  const tensors = new Map<string, Float32Tensor>();
  const add = (name: string, shape: number[], scale: number, offset = 0) =>
    tensors.set(name, { shape, data: rng.floats(shape.reduce((a, b) => a * b, 1), scale, offset) });
  const { hiddenSize: d, intermediateSize: inner, numHeads, numKvHeads, headDim, vocabSize } = arch;
  add('model.embed_tokens.weight', [vocabSize, d], 1);
  for (let i = 0; i < arch.numLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [numHeads * headDim, d], 0.5 / Math.sqrt(d));
    add(`${p}.self_attn.k_proj.weight`, [numKvHeads * headDim, d], 0.5 / Math.sqrt(d));
    add(`${p}.self_attn.v_proj.weight`, [numKvHeads * headDim, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.o_proj.weight`, [d, numHeads * headDim], 1 / Math.sqrt(numHeads * headDim));
    if (arch.qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [numHeads * headDim], 0.1);
      add(`${p}.self_attn.k_proj.bias`, [numKvHeads * headDim], 0.1);
      add(`${p}.self_attn.v_proj.bias`, [numKvHeads * headDim], 0.1);
    }
    if (arch.outputBias) add(`${p}.self_attn.o_proj.bias`, [d], 0.1);
    add(`${p}.mlp.gate_proj.weight`, [inner, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.up_proj.weight`, [inner, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.down_proj.weight`, [d, inner], 1 / Math.sqrt(inner));
  }
  add('model.norm.weight', [d], 0.1, 1);
  if (!arch.tieWordEmbeddings) add('lm_head.weight', [vocabSize, d], 1 / Math.sqrt(d));
  return new MapWeights(tensors);
}

export interface ReferenceStep {
  inputIds: readonly number[];
  positions: readonly number[];
  /** Additive mask [S, P+S]. */
  mask: Values;
  /** Per layer [P, kvHeads, headDim]. */
  pastKeys: Values[];
  pastValues: Values[];
}

export interface ReferenceOutput {
  hidden: Float64Array;
  logits: Float64Array;
  newKeys: Float64Array[];
  newValues: Float64Array[];
}

type WeightLookup = { data: (name: string) => Float32Array; optional: (name: string) => Float32Array | undefined };

function lookup(weights: MapWeights): WeightLookup {
  return {
    data: (name) => weights.readFloat32(name).data,
    optional: (name) => (weights.has(name) ? weights.readFloat32(name).data : undefined),
  };
}

/**
 * Pre-norm decoder layers `prefix{i}` over x [S, d] (HF names under `prefix`); `firstLayerNorm`
 * false drops layer 0's input norm, as in EAGLE heads.
 */
export function referenceLayers(
  arch: DecoderArchitecture,
  weights: MapWeights,
  prefix: string,
  input: Float64Array,
  step: ReferenceStep,
  firstLayerNorm = true,
): { x: Float64Array; newKeys: Float64Array[]; newValues: Float64Array[] } {
  const { data: w, optional } = lookup(weights);
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: inner } = arch;
  const s = step.inputIds.length;
  const invFreq = ropeInverseFrequencies(headDim, arch.ropeTheta, arch.ropeScaling);
  let x = input;
  const newKeys: Float64Array[] = [];
  const newValues: Float64Array[] = [];
  for (let layer = 0; layer < arch.numLayers; layer++) {
    const p = `${prefix}${layer}`;
    const normed = layer === 0 && !firstLayerNorm ? x : rmsNorm(x, s, d, w(`${p}.input_layernorm.weight`), arch.rmsNormEps);
    const proj = (name: string, width: number) => hfLinear(normed, s, w(`${p}.self_attn.${name}.weight`), width, d, optional(`${p}.self_attn.${name}.bias`));
    const q = applyRope(proj('q_proj', numHeads * headDim), step.positions, numHeads, headDim, invFreq);
    const k = applyRope(proj('k_proj', numKvHeads * headDim), step.positions, numKvHeads, headDim, invFreq);
    const v = proj('v_proj', numKvHeads * headDim);
    newKeys.push(k);
    newValues.push(v);
    const past = step.pastKeys[layer].length / (numKvHeads * headDim);
    const attended = attention(q, concat(step.pastKeys[layer], k), concat(step.pastValues[layer], v), step.mask, s, past + s, numHeads, numKvHeads, headDim);
    const projected = hfLinear(attended, s, w(`${p}.self_attn.o_proj.weight`), d, numHeads * headDim, optional(`${p}.self_attn.o_proj.bias`));
    x = x.map((value, i) => value + projected[i]);
    const mlpIn = rmsNorm(x, s, d, w(`${p}.post_attention_layernorm.weight`), arch.rmsNormEps);
    const mlpOut = swiGlu(mlpIn, s, d, inner, w(`${p}.mlp.gate_proj.weight`), w(`${p}.mlp.up_proj.weight`), w(`${p}.mlp.down_proj.weight`));
    x = x.map((value, i) => value + mlpOut[i]);
  }
  return { x, newKeys, newValues };
}

/** Rows of an embedding table [V, d] for the ids → [S, d]. */
export function embed(table: Float32Array, ids: readonly number[], d: number): Float64Array {
  const x = new Float64Array(ids.length * d);
  ids.forEach((id, i) => x.set(table.subarray(id * d, (id + 1) * d), i * d));
  return x;
}

export function referenceForward(arch: DecoderArchitecture, weights: MapWeights, step: ReferenceStep): ReferenceOutput {
  const { data: w } = lookup(weights);
  const { hiddenSize: d, vocabSize } = arch;
  const s = step.inputIds.length;
  const embedTable = w('model.embed_tokens.weight');
  const { x, newKeys, newValues } = referenceLayers(arch, weights, 'model.layers.', embed(embedTable, [...step.inputIds], d), step);
  const hidden = rmsNorm(x, s, d, w('model.norm.weight'), arch.rmsNormEps);
  const head = arch.tieWordEmbeddings ? embedTable : w('lm_head.weight');
  return { hidden, logits: hfLinear(hidden, s, head, vocabSize, d), newKeys, newValues };
}
