/**
 * A one-token decode variant of a fused-operator target graph in which each layer's attention is one
 * `com.microsoft.GroupQueryAttention` node: it applies RoPE to q and k, appends the new K/V rows to the
 * past and attends, in one node (plus a Pad of each past: the kernel writes the new row in place, into a past
 * one row longer) where the exported graph has seven (Split, two RotaryEmbedding, two
 * Concat, their Reshapes, Attention). Vanilla decoding uses it on request (`--decode-attention gqa`) for
 * its one-token steps, on both engines: the fused loop inlines gqaDecodeTarget with the cache carried
 * head-major; the host engine runs buildGqaDecodeModel, the same nodes behind the contract's
 * token-major inputs and outputs. Both feed the kernel the same values in the same shapes, so their
 * tokens are equal. Per decode step the host launches ≈ 17% fewer nodes, which is what bounds a fused
 * step on a GPU (docs/fused-loop.md).
 *
 * GroupQueryAttention takes the packed q/k/v projection (the fused export's `qkv_proj` output) and
 * keeps the cache head-major (BNSH, [1,kvH,L,D]); its output replaces the Attention node's, so the
 * rest of the graph (output projection, norms, MLP, head) is the exported one, unchanged. RoPE comes
 * from cos/sin tables [maxPositions, D/2] fed as inputs: the caller computes them once from the graph's
 * own `rope.inv_freq` with the operators the exported graph uses per step (rotaryCaches), so the values
 * are the same.
 *
 * Only decode steps with no mask fit it (GroupQueryAttention is causal and, without a bias, attends
 * to every past row): vanilla's one-token steps. Its kernels round differently from `Attention`'s, so
 * on fp16 its tokens may differ from decoding with the exported graph's attention on near-tied logits.
 */
import { GraphBuilder, MICROSOFT_DOMAIN } from '../onnx/builder.js';
import { ONNX_DATA_TYPE, type FloatDType } from '../onnx/dtypes.js';
import { attributeOf, intAttributeOf, producersOf } from '../onnx/graph-queries.js';
import { InlinableGraph } from '../onnx/inline.js';
import { OnnxAttributeType, type AttributeProto, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/proto.js';
import { declareDecoderInputs, DIM_SEQUENCE, TARGET_IO } from '../llama-graph.js';

/** The attention of vanilla's one-token steps: the exported graph's own nodes, or one GroupQueryAttention per layer. */
export type DecodeAttention = 'graph' | 'gqa';
export const DECODE_ATTENTIONS: readonly DecodeAttention[] = ['graph', 'gqa'];

/** Inputs the variant adds to the target graph's (past_key_i / past_value_i become BNSH [1,kvH,L,D]). */
export const GQA_IO = {
  /** int32 [1]: the cached rows L (GroupQueryAttention's total length − 1). */
  seqlensK: 'gqa_seqlens_k',
  /** int32 [1]: L + 1. */
  totalLength: 'gqa_total_sequence_length',
  /** [maxPositions, D/2] in the model's float type. */
  cosCache: 'gqa_cos_cache',
  sinCache: 'gqa_sin_cache',
  /** The present (past + new row) caches, BNSH [1,kvH,L+1,D]: internal values, not graph outputs. */
  presentKey: (layer: number) => `gqa_present_key_${layer}`,
  presentValue: (layer: number) => `gqa_present_value_${layer}`,
} as const;

/** Pad's pads for a BNSH cache: one row more on the sequence axis (a one-token step's own row). */
const GQA_ONE_MORE_ROW = 'gqa_one_more_row';

/** The exported graph's RoPE inverse frequencies (llama-graph.ts decoderStack). */
export const ROPE_INV_FREQ = 'rope.inv_freq';

/**
 * Rewrites a decoded fused-operator target graph (the model contract's target.onnx) into the decode
 * variant. Throws, naming what it expected, when the graph's attention is not the fused export's
 * pattern (a standard-operator graph has no Attention node).
 */
export function gqaDecodeTarget(target: ModelProto, kv: { numLayers: number; numKvHeads: number; headDim: number; dtype: FloatDType }, room: 'one row' | 'reserved' = 'one row'): ModelProto {
  const nodes = target.graph.node;
  const producers = producersOf(nodes);
  const producer = (value: string, opType: string, what: string): NodeProto => {
    const node = producers.get(value);
    if (node?.op_type !== opType) throw new Error(`target graph: ${what} is not the output of a ${opType} node (GroupQueryAttention needs a graph exported with --ops fused)`);
    return node;
  };
  const pastLayer = new Map<string, { layer: number; kind: 'key' | 'value' }>();
  for (let i = 0; i < kv.numLayers; i++) {
    pastLayer.set(TARGET_IO.pastKey(i), { layer: i, kind: 'key' });
    pastLayer.set(TARGET_IO.pastValue(i), { layer: i, kind: 'value' });
  }
  /** The layer whose past `concat` (Concat(Reshape(past), new)) extends. */
  const layerOf = (concat: NodeProto, kind: 'key' | 'value'): number => {
    const past = pastLayer.get(producer(concat.input[0], 'Reshape', `${concat.name}'s first input`).input[0]);
    if (past?.kind !== kind) throw new Error(`target graph: ${concat.name} does not extend a past_${kind}_i input`);
    return past.layer;
  };

  const rewritten: NodeProto[] = [];
  const layersDone = new Set<number>();
  for (const node of nodes) {
    if (node.op_type !== 'Attention' || (node.domain ?? '') !== '') {
      rewritten.push(node);
      continue;
    }
    if (node.input.length !== 4 || node.output.length !== 1) throw new Error(`target graph: ${node.name} is not a four-input, one-output Attention`);
    const [queryRope, keysConcat, valuesConcat] = [
      producer(node.input[0], 'RotaryEmbedding', `${node.name}'s query`),
      producer(node.input[1], 'Concat', `${node.name}'s keys`),
      producer(node.input[2], 'Concat', `${node.name}'s values`),
    ];
    const split = producer(queryRope.input[0], 'Split', `${queryRope.name}'s input`);
    const keyRope = producer(keysConcat.input[1], 'RotaryEmbedding', `${keysConcat.name}'s new rows`);
    if (keyRope.input[0] !== split.output[1] || valuesConcat.input[1] !== split.output[2]) throw new Error(`target graph: ${node.name}'s keys and values are not ${split.name}'s second and third outputs`);
    if ((intAttributeOf(queryRope, 'interleaved') ?? 0) !== 0) throw new Error(`target graph: ${queryRope.name} is interleaved RoPE; the loop's GroupQueryAttention rotates halves`);
    if (attributeOf(node, 'scale') !== undefined || attributeOf(node, 'softcap') !== undefined) throw new Error(`target graph: ${node.name} sets a scale or softcap the rewrite does not carry over`);
    const layer = layerOf(keysConcat, 'key');
    if (layerOf(valuesConcat, 'value') !== layer || layersDone.has(layer)) throw new Error(`target graph: ${node.name}'s keys and values belong to different or repeated layers`);
    layersDone.add(layer);
    const heads = (name: string) => {
      const value = intAttributeOf(node, name);
      if (value === undefined) throw new Error(`target graph: ${node.name} has no ${name}`);
      return value;
    };
    const int = (name: string, i: number): AttributeProto => ({ name, type: OnnxAttributeType.INT, i });
    // The kernel extends its cache in place: it writes the new row into the past buffer at row seqlens_k (onnxruntime's
    // CUDA kernel reuses the past's buffer for the present whenever it can, and fails when their shapes differ). So
    // each past is fed one row longer (a zero row, where the step's own row goes), the size of the present.
    // With room 'reserved' the caller feeds pasts that already have rows to spare (reserved-cache.ts).
    const padded = (past: string) => {
      if (room === 'reserved') return past;
      rewritten.push({ name: `${node.name}/gqa/pad_${past}`, op_type: 'Pad', domain: '', input: [past, GQA_ONE_MORE_ROW], output: [`${node.name}/gqa/${past}_with_room`], attribute: [] });
      return `${node.name}/gqa/${past}_with_room`;
    };
    const [pastKey, pastValue] = [padded(TARGET_IO.pastKey(layer)), padded(TARGET_IO.pastValue(layer))];
    rewritten.push({
      name: `${node.name}/gqa`,
      op_type: 'GroupQueryAttention',
      domain: MICROSOFT_DOMAIN,
      input: [split.input[0], '', '', pastKey, pastValue, GQA_IO.seqlensK, GQA_IO.totalLength, GQA_IO.cosCache, GQA_IO.sinCache],
      output: [node.output[0], GQA_IO.presentKey(layer), GQA_IO.presentValue(layer)],
      attribute: [int('num_heads', heads('q_num_heads')), int('kv_num_heads', heads('kv_num_heads')), int('do_rotary', 1), int('rotary_interleaved', 0)],
    });
  }
  if (layersDone.size !== kv.numLayers) throw new Error(`target graph: found the fused attention pattern in ${layersDone.size} of ${kv.numLayers} layers (GroupQueryAttention needs a graph exported with --ops fused)`);
  if (!target.graph.initializer.some((init) => init.name === ROPE_INV_FREQ)) throw new Error(`target graph has no ${ROPE_INV_FREQ} initializer`);

  const elemType = ONNX_DATA_TYPE[kv.dtype];
  const tensorInput = (name: string, elem: number, dims: (number | string)[]): ValueInfoProto => ({
    name,
    type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  });
  const headMajor = (input: ValueInfoProto): ValueInfoProto => (pastLayer.has(input.name) ? tensorInput(input.name, elemType, [1, kv.numKvHeads, 'past_sequence', kv.headDim]) : input);
  const oneMoreRow = { name: GQA_ONE_MORE_ROW, data_type: ONNX_DATA_TYPE.int64, dims: [8], int64_data: [0, 0, 0, 0, 0, 0, 1, 0] };
  const graph = {
    ...target.graph,
    node: rewritten,
    initializer: room === 'reserved' ? target.graph.initializer : [...target.graph.initializer, oneMoreRow],
    input: [
      ...target.graph.input.map(headMajor),
      tensorInput(GQA_IO.seqlensK, ONNX_DATA_TYPE.int32, [1]),
      tensorInput(GQA_IO.totalLength, ONNX_DATA_TYPE.int32, [1]),
      tensorInput(GQA_IO.cosCache, elemType, ['max_positions', kv.headDim / 2]),
      tensorInput(GQA_IO.sinCache, elemType, ['max_positions', kv.headDim / 2]),
    ],
  };
  const opsets = target.opset_import.some((o) => o.domain === MICROSOFT_DOMAIN) ? target.opset_import : [...target.opset_import, { domain: MICROSOFT_DOMAIN, version: 1 }];
  return { ...target, graph, opset_import: opsets };
}

/**
 * cos/sin of `position · inv_freq` for positions 0 … maxPositions − 1, [maxPositions, D/2] in `dtype`: the
 * exported graph's per-step rotary tables (fused-ops.ts rotaryTables: fp32 angles, Cos/Sin, Cast) for
 * every position at once, built in `b` (the Loop's outer graph: once per run).
 */
export function rotaryCaches(b: GraphBuilder, invFreq: string, maxPositions: number, dtype: FloatDType): { cos: string; sin: string } {
  return b.scope('gqa_rotary', () => {
    const positions = b.op('Cast', [b.op('Range', [b.scalar('int64', 0), b.scalar('int64', maxPositions), b.scalar('int64', 1)])], { to: ONNX_DATA_TYPE.float32 });
    const angles = b.op('Mul', [b.op('Unsqueeze', [positions, b.constant('int64', [-1])]), invFreq]);
    const table = (op: 'Cos' | 'Sin') => {
      const values = b.op(op, [angles]);
      return dtype === 'float32' ? values : b.op('Cast', [values], { to: ONNX_DATA_TYPE[dtype] });
    };
    return { cos: table('Cos'), sin: table('Sin') };
  });
}

/**
 * The decode variant behind the model contract's target interface, for the host engine's one-token
 * steps: past_key_i / past_value_i [1,P,kvH,D] token-major in, new_key_i / new_value_i [1,S,kvH,D] out,
 * hidden, argmax and whatever else target.onnx outputs. The pasts are transposed to head-major for
 * GroupQueryAttention and the new rows cut from its present outputs; the RoPE tables are the fused loop's
 * (rotaryCaches with the same `maxPositions`; onnxruntime folds them into constants at session creation), so a step computes what a fused-loop
 * step computes. Valid for S new tokens that see every past row and each other causally, at positions
 * P … P+S−1 (`attention_bias` is read but not used): the host engine routes only such steps here.
 */
export function buildGqaDecodeModel(exported: ModelProto, kv: { numLayers: number; numKvHeads: number; headDim: number; dtype: FloatDType }, maxPositions: number): ModelProto {
  const opset = exported.opset_import.find((o) => (o.domain ?? '') === '')?.version;
  const b = new GraphBuilder('target_gqa_decode', { opsetVersion: opset, irVersion: exported.ir_version });
  const target = new InlinableGraph(gqaDecodeTarget(exported, kv), 'target', b, new Map());
  const inputs = declareDecoderInputs(b, kv.numLayers, kv, kv.dtype);
  const i64 = (values: number[]) => b.constant('int64', values);
  const past = b.op('Shape', [inputs.pastKeys[0]], { start: 1, end: 2 }); // [1]: P
  const total = b.op('Add', [past, b.op('Shape', [inputs.inputIds], { start: 1, end: 2 })]); // [1]: P + S
  const int32 = (value: string) => b.op('Cast', [value], { to: ONNX_DATA_TYPE.int32 });
  const headMajor = (value: string) => b.op('Transpose', [value], { perm: [0, 2, 1, 3] });
  const rotary = rotaryCaches(b, target.valueName({ prefix: '', inputs: {} }, ROPE_INV_FREQ), maxPositions, kv.dtype);
  const callInputs: Record<string, string> = {
    [TARGET_IO.inputIds]: inputs.inputIds,
    [TARGET_IO.positionIds]: inputs.positionIds,
    [TARGET_IO.attentionBias]: inputs.attentionBias,
    [GQA_IO.seqlensK]: int32(b.op('Sub', [total, i64([1])])),
    [GQA_IO.totalLength]: int32(total),
    [GQA_IO.cosCache]: rotary.cos,
    [GQA_IO.sinCache]: rotary.sin,
  };
  for (let i = 0; i < kv.numLayers; i++) {
    callInputs[TARGET_IO.pastKey(i)] = headMajor(inputs.pastKeys[i]);
    callInputs[TARGET_IO.pastValue(i)] = headMajor(inputs.pastValues[i]);
  }
  const call = { prefix: '@step', inputs: callInputs };
  const outputs = target.call(b, call);
  const newRows = (present: string) => headMajor(b.op('Slice', [target.valueName(call, present), past, total, i64([2])]));
  const newKvShape = [1, DIM_SEQUENCE, kv.numKvHeads, kv.headDim];
  for (let i = 0; i < kv.numLayers; i++) {
    b.output(newRows(GQA_IO.presentKey(i)), kv.dtype, newKvShape, TARGET_IO.newKey(i));
    b.output(newRows(GQA_IO.presentValue(i)), kv.dtype, newKvShape, TARGET_IO.newValue(i));
  }
  const isNewRows = new Set(Array.from({ length: kv.numLayers }, (_, i) => [TARGET_IO.newKey(i), TARGET_IO.newValue(i)]).flat());
  target.declareOutputs(b, outputs, isNewRows);
  b.pruneUnusedNodes();
  for (const entry of exported.metadata_props ?? []) b.setMetadata(entry.key, entry.value);
  return b.toModel();
}
