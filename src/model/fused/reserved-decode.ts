/**
 * The host engine's one-token decode steps with reserved cache rows (`--reserve-rows` on the host engine): the
 * same computation as a reserving vanilla loop's step (vanilla-loop.ts, reserved-cache.ts), behind the model
 * contract's target interface. The past [1,P,kvH,D] comes in at its exact length and is padded on the device to
 * the generation's R rows; the step's row is written at row P; the bias masks the rows above P. So a host step
 * feeds the attention what a loop step feeds it, in the same shapes, and both engines give the same tokens on a
 * GPU too.
 *
 * Extra inputs: `reserve_pads` int64 [2·rank] (the Pad to R rows in the carried layout; reservePads) and
 * `reserved_row_ids` int64 [R] (0 … R−1). `attention_bias` is read but not used: the caller routes here only
 * steps that see every cached row (routedDecoderGraph).
 */
import { declareDecoderInputs, TARGET_IO } from '../llama-graph.js';
import { GraphBuilder } from '../onnx/builder.js';
import type { FloatDType } from '../onnx/dtypes.js';
import { InlinableGraph } from '../onnx/inline.js';
import type { ModelProto } from '../onnx/proto.js';
import { carriedDecoder, carriedLayoutOf } from './loop-ops.js';
import { DIM_RESERVED, RESERVED_IO, reservedRowIdShapes, reservedStepMasks, writeRowsInPlace } from './reserved-cache.js';
import { LOOP_IO, reservedRowsLayout } from './vanilla-loop.js';
import { decoderArgmaxInTwoLevels } from './vocab-reductions.js';

export function buildReservedDecodeModel(exported: ModelProto, kv: { numLayers: number; numKvHeads: number; headDim: number; dtype: FloatDType }, vocabSize: number): ModelProto {
  const decoder = carriedDecoder(exported, kv.numLayers);
  const rewritten = decoderArgmaxInTwoLevels(writeRowsInPlace(decoder.graph, decoder.carries), vocabSize).model;
  const opset = exported.opset_import.find((o) => (o.domain ?? '') === '')?.version;
  const b = new GraphBuilder('target_reserved_decode', { opsetVersion: opset, irVersion: exported.ir_version });
  const target = new InlinableGraph(rewritten, 'target', b, new Map());
  const inputs = declareDecoderInputs(b, kv.numLayers, kv, kv.dtype);
  const { rank } = reservedRowsLayout(exported);
  const pads = b.input(LOOP_IO.reservePads, 'int64', [2 * rank]);
  const rowIds = b.input(LOOP_IO.reservedRowIds, 'int64', [DIM_RESERVED]);
  const i64 = (values: number[]) => b.constant('int64', values);
  const past = b.op('Shape', [inputs.pastKeys[0]!], { start: 1, end: 2 }); // [1]: P
  const masks = reservedStepMasks(b, reservedRowIdShapes(b, rowIds, rank), past);
  const callInputs: Record<string, string> = {
    [TARGET_IO.inputIds]: inputs.inputIds,
    [TARGET_IO.positionIds]: inputs.positionIds,
    [TARGET_IO.attentionBias]: masks.bias,
    [RESERVED_IO.writeRow(rank)]: masks.writeRow!,
  };
  const width = kv.numKvHeads * kv.headDim;
  for (let i = 0; i < kv.numLayers; i++) {
    for (const [name, value] of [[TARGET_IO.pastKey(i), inputs.pastKeys[i]!], [TARGET_IO.pastValue(i), inputs.pastValues[i]!]] as const) {
      const carried = carriedLayoutOf(decoder.carries.get(name)!) === 'rows' ? b.op('Reshape', [value, i64([1, -1, width])]) : value;
      callInputs[name] = b.op('Pad', [carried, pads]);
    }
  }
  const outputs = target.call(b, { prefix: '@step', inputs: callInputs });
  target.declareOutputs(b, outputs);
  b.pruneUnusedNodes();
  for (const entry of exported.metadata_props ?? []) b.setMetadata(entry.key, entry.value);
  return b.toModel();
}
