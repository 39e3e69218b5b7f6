import type { GraphProto, ModelProto } from '../../../src/model/onnx/proto.js';

/** Inputs that onnxruntime's CUDA kernels read from host memory, by operator (input indices). */
const HOST_INPUTS: Record<string, number[]> = { Reshape: [1], Expand: [1], Slice: [1, 2, 3, 4], Range: [0, 1, 2], TopK: [1], Unsqueeze: [1], Squeeze: [1], ReduceSum: [1], ReduceMax: [1], Split: [1], Tile: [1], CumSum: [1], ConstantOfShape: [0], Pad: [1, 2, 3] };
/** Small integer ops that onnxruntime runs on the host when every input they compute from is there (its CPU-preferred shape nodes). */
const SHAPE_OPS = new Set(['Squeeze', 'Unsqueeze', 'Concat', 'Gather', 'Add', 'Sub', 'Mul', 'Div', 'Mod', 'Min', 'Max', 'Neg', 'Cast', 'Reshape', 'Slice']);

/**
 * The values of a Loop body that must be copied from the device to the host in every iteration, each a wait
 * for the GPU's queue to drain: values computed on the device and read where a CUDA kernel takes host memory
 * (a Slice's ends, a Range's limit, an Expand's shape). A model of onnxruntime's placement: Shape outputs live on
 * the host, and so do the outputs of small integer ops computed only from host values and constants; the loop's
 * iteration number and condition come from the host. On an H100 profile it predicted the three MemcpyToHost
 * nodes of the eagle loop's cycle before they were cut to one (docs/fused-loop.md).
 */
export function deviceToHostCopies(model: ModelProto, body: GraphProto): string[] {
  const constants = new Set<string>([...(body.initializer ?? []), ...(model.graph.initializer ?? [])].map((t) => t.name!));
  for (const node of body.node) if (node.op_type === 'Constant') node.output.forEach((o) => constants.add(o));
  const outerInputs = new Set(model.graph.input.map((i) => i.name!));
  const onHost = new Set<string>(body.input.slice(0, 2).map((i) => i.name!));
  for (const node of body.node) for (const input of node.input) if (outerInputs.has(input)) onHost.add(input);
  const copies = new Set<string>();
  for (const node of body.node) {
    if (node.op_type === 'Constant') continue;
    const computed = node.input.filter((v) => v && !constants.has(v));
    const hostIndices = HOST_INPUTS[node.op_type] ?? [];
    node.input.forEach((value, index) => {
      if (value && !constants.has(value) && hostIndices.includes(index) && !onHost.has(value)) copies.add(value);
    });
    const runsOnHost = node.op_type === 'Shape' || (SHAPE_OPS.has(node.op_type) && computed.length > 0 && computed.every((v) => onHost.has(v)));
    if (runsOnHost) node.output.forEach((o) => onHost.add(o));
  }
  return [...copies];
}
