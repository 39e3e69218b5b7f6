/** A plain TypeScript EAGLE-1/2 head forward, and random head weights for it. */
import type { EagleArchitecture } from '../../../src/model/eagle-config.js';
import type { Float32Tensor } from '../../../src/model/safetensors.js';
import { embed, MapWeights, referenceLayers, type ReferenceStep } from './reference-llama.js';
import { concat, hfLinear, Rng, type Values } from './reference-math.js';

export function randomEagleWeights(eagle: EagleArchitecture, seed: number): MapWeights {
  const rng = new Rng(seed);
  const { hiddenSize: d, intermediateSize: inner, numHeads, numKvHeads, headDim, vocabSize } = eagle.layers;
  const tensors = new Map<string, Float32Tensor>();
  const add = (name: string, shape: number[], scale: number, offset = 0) =>
    tensors.set(name, { shape, data: rng.floats(shape.reduce((a, b) => a * b, 1), scale, offset) });
  add('fc.weight', [d, 2 * d], 1 / Math.sqrt(2 * d));
  if (eagle.fcBias) add('fc.bias', [d], 0.1);
  for (let i = 0; i < eagle.layers.numLayers; i++) {
    const p = `layers.${i}`;
    if (i > 0) add(`${p}.input_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [numHeads * headDim, d], 0.5 / Math.sqrt(d));
    add(`${p}.self_attn.k_proj.weight`, [numKvHeads * headDim, d], 0.5 / Math.sqrt(d));
    add(`${p}.self_attn.v_proj.weight`, [numKvHeads * headDim, d], 1 / Math.sqrt(d));
    add(`${p}.self_attn.o_proj.weight`, [d, numHeads * headDim], 1 / Math.sqrt(numHeads * headDim));
    if (eagle.layers.qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [numHeads * headDim], 0.1);
      add(`${p}.self_attn.k_proj.bias`, [numKvHeads * headDim], 0.1);
      add(`${p}.self_attn.v_proj.bias`, [numKvHeads * headDim], 0.1);
    }
    add(`${p}.post_attention_layernorm.weight`, [d], 0.1, 1);
    add(`${p}.mlp.gate_proj.weight`, [inner, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.up_proj.weight`, [inner, d], 1 / Math.sqrt(d));
    add(`${p}.mlp.down_proj.weight`, [d, inner], 1 / Math.sqrt(inner));
  }
  // EAGLE checkpoints carry a copy of the target's embedding; export must ignore it.
  add('embed_tokens.weight', [vocabSize, d], 1);
  return new MapWeights(tensors);
}

export interface EagleReferenceOutput {
  out: Float64Array;
  newKeys: Float64Array[];
  newValues: Float64Array[];
}

/** out = layers(fc([embed_target(ids); feature])), layer 0 without input norm, no final norm. */
export function referenceEagleForward(eagle: EagleArchitecture, head: MapWeights, targetEmbedding: Float32Array, step: ReferenceStep & { feature: Values }): EagleReferenceOutput {
  const d = eagle.layers.hiddenSize;
  const s = step.inputIds.length;
  const embedded = embed(targetEmbedding, [...step.inputIds], d);
  const joined = new Float64Array(s * 2 * d);
  for (let i = 0; i < s; i++) {
    joined.set(embedded.subarray(i * d, (i + 1) * d), i * 2 * d);
    joined.set(concat(Array.from({ length: d }, (_, j) => step.feature[i * d + j])), i * 2 * d + d);
  }
  const fcBias = head.has('fc.bias') ? head.readFloat32('fc.bias').data : undefined;
  const fused = hfLinear(joined, s, head.readFloat32('fc.weight').data, d, 2 * d, fcBias);
  const { x, newKeys, newValues } = referenceLayers(eagle.layers, head, 'layers.', fused, step, false);
  return { out: x, newKeys, newValues };
}
