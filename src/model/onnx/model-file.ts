/**
 * Turns a built graph into a ModelProto and writes it to disk. Past a size threshold the weights go
 * to a side file `<model>.onnx.data` (ONNX external data), because a protobuf message cannot exceed
 * 2 GB; or, given a shared data file, into that file, where graphs of one folder store each distinct
 * tensor once. Offsets are aligned so onnxruntime can memory-map the file.
 */
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DType } from './dtypes.js';
import { ExternalDataFile, type ExternalLocation } from './external-data.js';
import { ONNX_DATA_TYPE } from './dtypes.js';
import {
  encodeModel,
  OnnxDataLocation,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type StringStringEntryProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

export interface InitializerEntry {
  name: string;
  dtype: DType;
  dims: number[];
  /** Little-endian element bytes. */
  bytes: Uint8Array;
}

export interface BuiltGraph {
  name: string;
  irVersion: number;
  producerName: string;
  opsets: OperatorSetIdProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers: InitializerEntry[];
  /** Initializers taken over as encoded tensors (kept as they are, external data references included). */
  adoptedInitializers?: TensorProto[];
  nodes: NodeProto[];
  metadata: StringStringEntryProto[];
}

/** Leaves room under protobuf's 2 GiB message limit for the graph itself. */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 2 * 1024 ** 3 - 64 * 1024 ** 2;

export interface SaveOptions {
  /** Weights go to an external file when their total size exceeds this many bytes. */
  externalDataThreshold?: number;
  /** Put every initializer of at least externalMinBytes into this file (threshold and alignment are then ignored). */
  sharedData?: ExternalDataFile;
  /** In external mode, initializers smaller than this stay inline (shape constants, scalars). */
  externalMinBytes?: number;
  /** Byte alignment of each tensor in the external file. */
  alignment?: number;
}

export interface SavedModel {
  modelPath: string;
  /** Set when the weights were written to an external data file. */
  dataPath?: string;
}

function tensorProto(init: InitializerEntry, external?: ExternalLocation): TensorProto {
  const proto: TensorProto = { name: init.name, dims: init.dims, data_type: ONNX_DATA_TYPE[init.dtype] };
  if (!external) {
    proto.raw_data = init.bytes;
    return proto;
  }
  proto.data_location = OnnxDataLocation.EXTERNAL;
  proto.external_data = [
    { key: 'location', value: external.location },
    { key: 'offset', value: String(external.offset) },
    { key: 'length', value: String(external.length) },
  ];
  return proto;
}

export function buildModelProto(graph: BuiltGraph, external = new Map<string, ExternalLocation>()): ModelProto {
  return {
    ir_version: graph.irVersion,
    producer_name: graph.producerName,
    opset_import: graph.opsets,
    metadata_props: graph.metadata,
    graph: {
      name: graph.name,
      node: graph.nodes,
      input: graph.inputs,
      output: graph.outputs,
      initializer: [...graph.initializers.map((init) => tensorProto(init, external.get(init.name))), ...(graph.adoptedInitializers ?? [])],
    },
  };
}

/** Puts the initializers of at least `minBytes` into `file`; returns where each one went. */
function placeExternal(initializers: InitializerEntry[], file: ExternalDataFile, minBytes: number): Map<string, ExternalLocation> {
  return new Map(initializers.filter((init) => init.bytes.byteLength >= minBytes).map((init) => [init.name, file.place(init.bytes)]));
}

export function saveModel(graph: BuiltGraph, modelPath: string, options: SaveOptions = {}): SavedModel {
  const minBytes = options.externalMinBytes ?? 1024;
  if (options.sharedData) {
    if (dirname(options.sharedData.path) !== dirname(modelPath)) throw new Error(`${options.sharedData.path}: shared data must be next to ${modelPath}`);
    writeFileSync(modelPath, encodeModel(buildModelProto(graph, placeExternal(graph.initializers, options.sharedData, minBytes))));
    return { modelPath, dataPath: options.sharedData.path };
  }
  const threshold = options.externalDataThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD;
  const totalBytes = graph.initializers.reduce((sum, init) => sum + init.bytes.byteLength, 0);
  if (totalBytes <= threshold) {
    writeFileSync(modelPath, encodeModel(buildModelProto(graph)));
    return { modelPath };
  }
  const dataFile = new ExternalDataFile(`${modelPath}.data`, options.alignment ?? 4096);
  try {
    writeFileSync(modelPath, encodeModel(buildModelProto(graph, placeExternal(graph.initializers, dataFile, minBytes))));
  } finally {
    dataFile.close();
  }
  return { modelPath, dataPath: dataFile.path };
}
