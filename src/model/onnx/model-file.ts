/**
 * Turns a built graph into a ModelProto and writes it to disk. Past a size threshold the weights go
 * to a side file `<model>.onnx.data` (ONNX external data), because a protobuf message cannot exceed
 * 2 GB; offsets are aligned so onnxruntime can memory-map the file.
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { DType } from './dtypes.js';
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
  nodes: NodeProto[];
  metadata: StringStringEntryProto[];
}

/** Leaves room under protobuf's 2 GiB message limit for the graph itself. */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 2 * 1024 ** 3 - 64 * 1024 ** 2;

export interface SaveOptions {
  /** Weights go to an external file when their total size exceeds this many bytes. */
  externalDataThreshold?: number;
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

interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
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
      initializer: graph.initializers.map((init) => tensorProto(init, external.get(init.name))),
    },
  };
}

const ZEROS = new Uint8Array(64 * 1024);

/** Writes the selected initializers one after another, each starting at an aligned offset. */
function writeExternalData(dataPath: string, initializers: InitializerEntry[], alignment: number): Map<string, ExternalLocation> {
  const locations = new Map<string, ExternalLocation>();
  const location = basename(dataPath);
  const fd = openSync(dataPath, 'w');
  try {
    let offset = 0;
    for (const init of initializers) {
      let padding = (alignment - (offset % alignment)) % alignment;
      while (padding > 0) {
        const written = writeSync(fd, ZEROS, 0, Math.min(padding, ZEROS.length));
        padding -= written;
        offset += written;
      }
      for (let done = 0; done < init.bytes.byteLength; ) {
        done += writeSync(fd, init.bytes, done);
      }
      locations.set(init.name, { location, offset, length: init.bytes.byteLength });
      offset += init.bytes.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  return locations;
}

export function saveModel(graph: BuiltGraph, modelPath: string, options: SaveOptions = {}): SavedModel {
  const threshold = options.externalDataThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD;
  const minBytes = options.externalMinBytes ?? 1024;
  const alignment = options.alignment ?? 4096;
  const totalBytes = graph.initializers.reduce((sum, init) => sum + init.bytes.byteLength, 0);
  if (totalBytes <= threshold) {
    writeFileSync(modelPath, encodeModel(buildModelProto(graph)));
    return { modelPath };
  }
  const dataPath = `${modelPath}.data`;
  const externalInitializers = graph.initializers.filter((init) => init.bytes.byteLength >= minBytes);
  const locations = writeExternalData(dataPath, externalInitializers, alignment);
  writeFileSync(modelPath, encodeModel(buildModelProto(graph, locations)));
  return { modelPath, dataPath };
}
