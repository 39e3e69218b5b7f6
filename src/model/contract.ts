/**
 * The inputs and outputs each graph of a model folder must declare, derived from its config.json,
 * and a check of a loaded session against them — so a graph exported by other tools fails at load
 * time with a list of what is wrong rather than deep inside a run.
 */
import { UserError } from '../util/errors.js';
import { EAGLE_IO } from './eagle-graph.js';
import { DIM_PAST, DIM_SEQUENCE, DIM_TOTAL, TARGET_IO } from './llama-graph.js';
import { DIM_K, DIM_ROWS, HEAD_IO } from './lm-head-graph.js';
import type { ModelFolderConfig } from './model-folder.js';

export type ContractDType = 'float32' | 'float16' | 'int64';

/** A dimension: a fixed size, or a symbolic name (any size at run time). */
export interface TensorSpec {
  name: string;
  dtype: ContractDType;
  shape: readonly (number | string)[];
}

export interface GraphSpec {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

interface KvLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

function decoderInputs(kv: KvLayout, dtype: ContractDType): TensorSpec[] {
  const specs: TensorSpec[] = [
    { name: TARGET_IO.inputIds, dtype: 'int64', shape: [1, DIM_SEQUENCE] },
    { name: TARGET_IO.positionIds, dtype: 'int64', shape: [1, DIM_SEQUENCE] },
    { name: TARGET_IO.attentionBias, dtype: 'float32', shape: [1, 1, DIM_SEQUENCE, DIM_TOTAL] },
  ];
  for (let i = 0; i < kv.numLayers; i++) {
    specs.push({ name: TARGET_IO.pastKey(i), dtype, shape: [1, DIM_PAST, kv.numKvHeads, kv.headDim] });
    specs.push({ name: TARGET_IO.pastValue(i), dtype, shape: [1, DIM_PAST, kv.numKvHeads, kv.headDim] });
  }
  return specs;
}

function newKvOutputs(kv: KvLayout, dtype: ContractDType): TensorSpec[] {
  return Array.from({ length: kv.numLayers }, (_, i) => [
    { name: TARGET_IO.newKey(i), dtype, shape: [1, DIM_SEQUENCE, kv.numKvHeads, kv.headDim] },
    { name: TARGET_IO.newValue(i), dtype, shape: [1, DIM_SEQUENCE, kv.numKvHeads, kv.headDim] },
  ]).flat();
}

/** Target and plain draft models. */
export function decoderSpec(facts: { num_layers: number; num_kv_heads: number; head_dim: number; hidden_size: number }, dtype: ContractDType): GraphSpec {
  const kv = { numLayers: facts.num_layers, numKvHeads: facts.num_kv_heads, headDim: facts.head_dim };
  return {
    inputs: decoderInputs(kv, dtype),
    outputs: [
      { name: TARGET_IO.hidden, dtype, shape: [1, DIM_SEQUENCE, facts.hidden_size] },
      { name: TARGET_IO.argmax, dtype: 'int64', shape: [1, DIM_SEQUENCE] },
      ...newKvOutputs(kv, dtype),
    ],
  };
}

export function eagleSpec(config: ModelFolderConfig): GraphSpec {
  const facts = config.eagle!.architecture;
  const kv = { numLayers: facts.num_layers, numKvHeads: facts.num_kv_heads, headDim: facts.head_dim };
  return {
    inputs: [...decoderInputs(kv, config.dtype), { name: EAGLE_IO.feature, dtype: config.dtype, shape: [1, DIM_SEQUENCE, config.hidden_size] }],
    outputs: [{ name: EAGLE_IO.out, dtype: config.dtype, shape: [1, DIM_SEQUENCE, config.hidden_size] }, ...newKvOutputs(kv, config.dtype)],
  };
}

export function headSpec(config: ModelFolderConfig): GraphSpec {
  return {
    inputs: [
      { name: HEAD_IO.hidden, dtype: config.dtype, shape: [DIM_ROWS, config.hidden_size] },
      { name: HEAD_IO.topK, dtype: 'int64', shape: [1] },
    ],
    outputs: [
      { name: HEAD_IO.topkIds, dtype: 'int64', shape: [DIM_ROWS, DIM_K] },
      { name: HEAD_IO.topkLogprobs, dtype: 'float32', shape: [DIM_ROWS, DIM_K] },
    ],
  };
}

/** What onnxruntime reports about a graph input or output. */
export interface ValueMetadataLike {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: readonly (number | string)[];
}

/** The ways `declared` departs from `spec`; empty when it conforms. Extra outputs are allowed. */
export function contractMismatches(spec: GraphSpec, declared: { inputs: readonly ValueMetadataLike[]; outputs: readonly ValueMetadataLike[] }): string[] {
  const problems: string[] = [];
  const compare = (kind: string, expected: TensorSpec[], actual: readonly ValueMetadataLike[]) => {
    const byName = new Map(actual.map((v) => [v.name, v]));
    for (const want of expected) {
      const got = byName.get(want.name);
      if (!got) {
        problems.push(`missing ${kind} ${want.name}`);
        continue;
      }
      if (got.type !== want.dtype) problems.push(`${kind} ${want.name} is ${String(got.type)}, expected ${want.dtype}`);
      const shape = got.shape ?? [];
      const fixedMismatch = want.shape.some((dim, i) => typeof dim === 'number' && shape[i] !== dim);
      if (shape.length !== want.shape.length || fixedMismatch) {
        problems.push(`${kind} ${want.name} has shape [${shape.join(', ')}], expected [${want.shape.join(', ')}]`);
      }
    }
    return byName;
  };
  const inputs = compare('input', spec.inputs, declared.inputs);
  compare('output', spec.outputs, declared.outputs);
  const expectedInputs = new Set(spec.inputs.map((s) => s.name));
  for (const name of inputs.keys()) if (!expectedInputs.has(name)) problems.push(`unexpected input ${name} (the contract would never feed it)`);
  return problems;
}

export function assertConforms(label: string, spec: GraphSpec, declared: { inputs: readonly ValueMetadataLike[]; outputs: readonly ValueMetadataLike[] }): void {
  const problems = contractMismatches(spec, declared);
  if (problems.length > 0) throw new UserError(`${label} does not follow the model contract: ${problems.join('; ')}`);
}
