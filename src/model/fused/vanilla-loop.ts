/**
 * `vanilla_loop`: greedy autoregressive decoding compiled into one ONNX `Loop`, so the KV cache stays
 * on the execution provider between decode steps (docs/fused-loop.md).
 *
 * The Loop body is the folder's own target graph (target.onnx, decoded as is: every node, the same
 * external-data initializers in weights.data) wrapped by a prologue and an epilogue built with the
 * GraphBuilder:
 * - prologue: input_ids / position_ids from the carried token and length, and the additive mask
 *   [1,1,1,C+1] (cache rows < length and the token itself visible) built from `length`;
 * - epilogue: the new K/V row written at row `length` with `Where(arange(C) == length, row, cache)`,
 *   the argmax as the next carried token and a scan output, `length + 1`, and
 *   `cond = no stop id was produced`.
 *
 * Inputs:  first_token [1] int64 (the token after the cached rows, not yet in the cache),
 *          cache_key_i / cache_value_i [1,C,kvH,D] (C = capacity, rows ≥ past_length unused),
 *          past_length [] int64, max_steps [] int64, stop_ids [K] int64 (K may be 0).
 * Outputs: tokens [N,1] int64 (N ≤ max_steps: the tokens generated, a final stop id included),
 *          final_token [1], final_length [], final_key_i / final_value_i [1,C,kvH,D] (to run the next chunk).
 *
 * Weights are not copied: the model keeps target.onnx's external-data references (`weights.data`,
 * relative) and is loaded from bytes with the external-data folder set to the model folder
 * (see createLoopSession). Built in memory on every session creation
 * (milliseconds: the target graph is ~70 KB of protobuf).
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { MASKED } from '../../engine/attention-bias.js';
import { TARGET_IO } from '../llama-graph.js';
import { GraphBuilder, type Shape } from '../onnx/builder.js';
import { ONNX_DATA_TYPE, type FloatDType } from '../onnx/dtypes.js';
import { decodeModel, OnnxAttributeType, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/proto.js';
import type { Ort } from '../ort-runtime.js';
import { logitsBeforeArgmax, noStopIdAmong } from './loop-ops.js';
import { drawFrom, SAMPLING_IO, samplingProbabilities } from './sampling-ops.js';
import { createSessionFromModel } from './loop-session.js';

export const LOOP_IO = {
  firstToken: 'first_token',
  cacheKey: (layer: number) => `cache_key_${layer}`,
  cacheValue: (layer: number) => `cache_value_${layer}`,
  pastLength: 'past_length',
  maxSteps: 'max_steps',
  stopIds: 'stop_ids',
  /** Sampling graphs: temperature, top_p (nucleus only), uniforms [max_steps] (one draw per step). */
  ...SAMPLING_IO,
  tokens: 'tokens',
  finalToken: 'final_token',
  finalLength: 'final_length',
  finalKey: (layer: number) => `final_key_${layer}`,
  finalValue: (layer: number) => `final_value_${layer}`,
} as const;

export const LOOP_GRAPH = 'vanilla_loop';
export const DIM_CAPACITY = 'capacity';
export const DIM_STEPS = 'steps';
const DIM_STOP = 'num_stop_ids';

export interface LoopKvLayout {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  dtype: FloatDType;
}

/** Body-local names (the target graph's own inputs keep their names: they are the body's values). */
const BODY = {
  iteration: 'loop/iteration',
  condIn: 'loop/cond_in',
  token: 'loop/token',
  length: 'loop/length',
  condOut: 'loop/cond_out',
  tokenOut: 'loop/token_out',
  lengthOut: 'loop/length_out',
  keyOut: (layer: number) => `loop/key_out_${layer}`,
  valueOut: (layer: number) => `loop/value_out_${layer}`,
  tokenScan: 'loop/token_scan',
};

function valueInfo(name: string, elemType: number, shape: Shape): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

/** Every value name a graph defines: inputs, initializers, node outputs. */
function definedNames(model: ModelProto): Set<string> {
  const names = new Set<string>();
  for (const input of model.graph.input) names.add(input.name);
  for (const init of model.graph.initializer) names.add(init.name!);
  for (const node of model.graph.node) for (const output of node.output) names.add(output);
  return names;
}

/**
 * Wraps a decoded target graph (the contract's target.onnx) into the vanilla_loop model. With
 * `sampling`, each step draws from softmax(logits / temperature) (with 'nucleus': truncated to
 * `top_p`) by inverse CDF with one of the `uniforms` instead of taking the argmax.
 */
export function buildVanillaLoopModel(target: ModelProto, kv: LoopKvLayout, options: { sampling?: 'plain' | 'nucleus' } = {}): ModelProto {
  const { numLayers, numKvHeads, headDim, dtype } = kv;
  const layers = Array.from({ length: numLayers }, (_, i) => i);
  const targetInputs = new Set(target.graph.input.map((i) => i.name));
  const expected = [TARGET_IO.inputIds, TARGET_IO.positionIds, TARGET_IO.attentionBias, ...layers.flatMap((i) => [TARGET_IO.pastKey(i), TARGET_IO.pastValue(i)])];
  for (const name of expected) if (!targetInputs.has(name)) throw new Error(`target graph has no input ${name}`);
  if (targetInputs.size !== expected.length) throw new Error(`target graph has inputs beyond the contract's: ${[...targetInputs].join(', ')}`);

  const b = new GraphBuilder(`${LOOP_GRAPH}/body`);
  const cacheShape: Shape = [1, DIM_CAPACITY, numKvHeads, headDim];
  const realInputs = [
    b.input(BODY.iteration, 'int64', []),
    b.input(BODY.condIn, 'bool', []),
    b.input(BODY.token, 'int64', [1]),
    b.input(BODY.length, 'int64', []),
    ...layers.flatMap((i) => [b.input(TARGET_IO.pastKey(i), dtype, cacheShape), b.input(TARGET_IO.pastValue(i), dtype, cacheShape)]),
  ];
  // Values the body sees without defining them: the outer graph's stop_ids and everything the target
  // graph defines (so generated constant names never collide with the target's).
  const produced = new Set<string>([TARGET_IO.inputIds, TARGET_IO.positionIds, TARGET_IO.attentionBias]);
  const dtypeOfTargetValue = (name: string) => (name === TARGET_IO.argmax ? 'int64' : layers.some((i) => name === TARGET_IO.newKey(i) || name === TARGET_IO.newValue(i)) ? dtype : 'float32');
  b.input(LOOP_IO.stopIds, 'int64', [DIM_STOP]);
  if (options.sampling) {
    b.input(LOOP_IO.temperature, 'float32', []);
    b.input(LOOP_IO.uniforms, 'float32', [DIM_STEPS]);
    if (options.sampling === 'nucleus') b.input(LOOP_IO.topP, 'float32', []);
  }
  for (const name of definedNames(target)) if (!targetInputs.has(name) && !produced.has(name)) b.input(name, dtypeOfTargetValue(name), []);

  const { selector } = b.scope('loop', () => {
    const i64 = (values: number[]) => b.constant('int64', values);
    b.node('Reshape', [BODY.token, i64([1, 1])], { name: 'input_ids', outputs: [TARGET_IO.inputIds] });
    b.node('Reshape', [BODY.length, i64([1, 1])], { name: 'position_ids', outputs: [TARGET_IO.positionIds] });
    const capacity = b.op('Squeeze', [b.op('Shape', [TARGET_IO.pastKey(0)], { start: 1, end: 2 }), i64([0])]);
    const rows = b.op('Range', [b.scalar('int64', 0), capacity, b.scalar('int64', 1)], undefined, { outputDtypes: ['int64'] });
    const visible = b.op('Concat', [b.op('Less', [rows, BODY.length]), b.constant('bool', [true])], { axis: 0 });
    const bias = b.op('Where', [visible, b.scalar('float32', 0), b.scalar('float32', MASKED)]);
    b.node('Reshape', [bias, i64([1, 1, 1, -1])], { name: 'attention_bias', outputs: [TARGET_IO.attentionBias] });
    return { selector: b.op('Reshape', [b.op('Equal', [rows, BODY.length]), i64([1, -1, 1, 1])]) };
  });
  const prologueCount = b.toGraph().nodes.length;

  const sampledToken = () => {
    const logits = b.op('Cast', [b.op('Reshape', [logitsBeforeArgmax(target), b.constant('int64', [1, -1])])], { to: ONNX_DATA_TYPE.float32 });
    const p = samplingProbabilities(b, logits, LOOP_IO.temperature, options.sampling === 'nucleus' ? LOOP_IO.topP : undefined);
    const u = b.op('Gather', [LOOP_IO.uniforms, BODY.iteration], { axis: 0 });
    return b.op('Reshape', [drawFrom(b, b.op('Reshape', [p, b.constant('int64', [-1])]), u), b.constant('int64', [1])]);
  };
  const epilogue = b.scope('loop', () => {
    const keys = layers.map((i) => b.op('Where', [selector, TARGET_IO.newKey(i), TARGET_IO.pastKey(i)]));
    const values = layers.map((i) => b.op('Where', [selector, TARGET_IO.newValue(i), TARGET_IO.pastValue(i)]));
    const token = options.sampling ? sampledToken() : b.op('Reshape', [TARGET_IO.argmax, b.constant('int64', [1])]);
    // A -1 that no token equals keeps the reduced axis non-empty: CUDA's ReduceSum refuses an empty axis
    // without keepdims, and stop_ids may be empty.
    const cond = noStopIdAmong(b, token, LOOP_IO.stopIds);
    const length = b.op('Add', [BODY.length, b.scalar('int64', 1)]);
    return { keys, values, token, cond, length };
  });
  b.output(epilogue.cond, 'bool', [], BODY.condOut);
  b.output(epilogue.token, 'int64', [1], BODY.tokenOut);
  b.output(epilogue.length, 'int64', [], BODY.lengthOut);
  layers.forEach((i) => {
    b.output(epilogue.keys[i], dtype, cacheShape, BODY.keyOut(i));
    b.output(epilogue.values[i], dtype, cacheShape, BODY.valueOut(i));
  });
  b.output(epilogue.token, 'int64', [1], BODY.tokenScan);

  const body = b.toModel().graph;
  const bodyNodes = body.node;
  body.node = [...bodyNodes.slice(0, prologueCount), ...target.graph.node, ...bodyNodes.slice(prologueCount)];
  body.input = body.input.filter((input) => realInputs.includes(input.name));
  body.value_info = target.graph.value_info ?? [];

  const floatType = ONNX_DATA_TYPE[dtype];
  const int64 = ONNX_DATA_TYPE.int64;
  const condTrue = 'loop_cond_true';
  const loop: NodeProto = {
    name: LOOP_GRAPH,
    op_type: 'Loop',
    domain: '',
    input: [LOOP_IO.maxSteps, condTrue, LOOP_IO.firstToken, LOOP_IO.pastLength, ...layers.flatMap((i) => [LOOP_IO.cacheKey(i), LOOP_IO.cacheValue(i)])],
    output: [LOOP_IO.finalToken, LOOP_IO.finalLength, ...layers.flatMap((i) => [LOOP_IO.finalKey(i), LOOP_IO.finalValue(i)]), LOOP_IO.tokens],
    attribute: [{ name: 'body', type: OnnxAttributeType.GRAPH, g: body }],
  };
  // Loop's carried outputs follow its inputs' order: token, length, then per layer key, value.
  body.output = [
    body.output.find((o) => o.name === BODY.condOut)!,
    body.output.find((o) => o.name === BODY.tokenOut)!,
    body.output.find((o) => o.name === BODY.lengthOut)!,
    ...layers.flatMap((i) => [body.output.find((o) => o.name === BODY.keyOut(i))!, body.output.find((o) => o.name === BODY.valueOut(i))!]),
    body.output.find((o) => o.name === BODY.tokenScan)!,
  ];
  const cacheInfo = (name: string) => valueInfo(name, floatType, cacheShape);
  const metadata = (target.metadata_props ?? []).map((e) => (e.key === 'fr-spec.graph' ? { key: e.key, value: LOOP_GRAPH } : e));
  return {
    ir_version: target.ir_version,
    producer_name: 'fr-spec',
    opset_import: target.opset_import,
    metadata_props: metadata,
    graph: {
      name: LOOP_GRAPH,
      node: [loop],
      input: [
        valueInfo(LOOP_IO.firstToken, int64, [1]),
        ...layers.flatMap((i) => [cacheInfo(LOOP_IO.cacheKey(i)), cacheInfo(LOOP_IO.cacheValue(i))]),
        valueInfo(LOOP_IO.pastLength, int64, []),
        valueInfo(LOOP_IO.maxSteps, int64, []),
        valueInfo(LOOP_IO.stopIds, int64, [DIM_STOP]),
        ...(options.sampling ? [valueInfo(LOOP_IO.temperature, ONNX_DATA_TYPE.float32, []), valueInfo(LOOP_IO.uniforms, ONNX_DATA_TYPE.float32, [DIM_STEPS])] : []),
        ...(options.sampling === 'nucleus' ? [valueInfo(LOOP_IO.topP, ONNX_DATA_TYPE.float32, [])] : []),
      ],
      output: [
        valueInfo(LOOP_IO.tokens, int64, [DIM_STEPS, 1]),
        valueInfo(LOOP_IO.finalToken, int64, [1]),
        valueInfo(LOOP_IO.finalLength, int64, []),
        ...layers.flatMap((i) => [cacheInfo(LOOP_IO.finalKey(i)), cacheInfo(LOOP_IO.finalValue(i))]),
      ],
      initializer: [
        ...target.graph.initializer,
        { name: condTrue, dims: [], data_type: ONNX_DATA_TYPE.bool, raw_data: new Uint8Array([1]) },
      ],
    },
  };
}

/** The external data files (ONNX `location`s, relative to the model file) a model's initializers point at. */
export function externalDataLocations(model: ModelProto): string[] {
  const locations = new Set<string>();
  for (const init of model.graph.initializer) for (const entry of init.external_data ?? []) if (entry.key === 'location') locations.add(entry.value);
  return [...locations];
}

/** Creates the vanilla_loop session for the target graph at `targetPath` (see createSessionFromModel). */
export async function createLoopSession(ortModule: Ort, targetPath: string, kv: LoopKvLayout, options: ort.InferenceSession.SessionOptions, sampling?: 'plain' | 'nucleus'): Promise<ort.InferenceSession> {
  return createSessionFromModel(ortModule, buildVanillaLoopModel(decodeModel(readFileSync(targetPath)), kv, { sampling }), dirname(targetPath), options);
}
