/**
 * A small ONNX graph builder: declare inputs, outputs and initializers, append nodes in
 * topological order, then serialize (optionally with weights in an external data file).
 */
import { encodeAttributes, type Attributes } from './attributes.js';
import { ONNX_DATA_TYPE, type DType, type HostData } from './dtypes.js';
import { buildModelProto, saveModel, type BuiltGraph, type InitializerEntry, type SavedModel, type SaveOptions } from './model-file.js';
import { encodeModel, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { tensorBytes } from './tensor-bytes.js';
import { inferOutputDtypes } from './type-inference.js';

/** A dimension: a fixed size, or a symbolic name such as 'sequence_length'. */
export type Dim = number | string;
export type Shape = readonly Dim[];

export const ONNX_DOMAIN = '';
export const MICROSOFT_DOMAIN = 'com.microsoft';

/** ai.onnx opset 21 is defined from IR version 10. */
const DEFAULT_OPSET = 21;
const DEFAULT_IR_VERSION = 10;
/** The first IR version that defines each ai.onnx opset from 21 on (onnx/helper.py's table). */
const IR_VERSION_FOR_OPSET: readonly [opset: number, ir: number][] = [
  [21, 10],
  [23, 11],
  [25, 12],
];
/** Opset versions imported automatically the first time a node uses the domain. */
const KNOWN_DOMAIN_VERSIONS: Record<string, number> = { [MICROSOFT_DOMAIN]: 1 };
/** Constants up to this many elements are shared between identical requests. */
const SHARED_CONSTANT_MAX_ELEMENTS = 64;

export interface NodeOptions {
  /** Node name; made unique and prefixed with the current scope. Defaults to the op type. */
  name?: string;
  domain?: string;
  attributes?: Attributes;
  /** Number of outputs (auto-named) or explicit output names. Defaults to 1. */
  outputs?: number | readonly string[];
  /** Overrides the inferred element types of the outputs. */
  outputDtypes?: readonly (DType | undefined)[];
}

export interface GraphBuilderOptions {
  opsetVersion?: number;
  irVersion?: number;
  producerName?: string;
}

function valueInfo(name: string, dtype: DType, shape: Shape): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ONNX_DATA_TYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, d) => product * d, 1);
}

export class GraphBuilder {
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: InitializerEntry[] = [];
  private readonly nodes: NodeProto[] = [];
  private readonly adoptedInitializers: TensorProto[] = [];
  /** Every value defined so far (inputs, initializers, node outputs) with its type if known. */
  private readonly values = new Map<string, DType | undefined>();
  private readonly nodeNames = new Set<string>();
  private readonly opsets = new Map<string, number>();
  private readonly sharedConstants = new Map<string, string>();
  private readonly metadata = new Map<string, string>();
  private readonly scopes: string[] = [];
  private irVersion: number;
  private readonly producerName: string;

  constructor(
    readonly name: string,
    options: GraphBuilderOptions = {},
  ) {
    this.irVersion = options.irVersion ?? DEFAULT_IR_VERSION;
    this.importOpset(ONNX_DOMAIN, options.opsetVersion ?? DEFAULT_OPSET);
    this.producerName = options.producerName ?? 'fr-spec';
  }

  /** Declares a graph input and returns its name. */
  input(name: string, dtype: DType, shape: Shape): string {
    this.define(name, dtype);
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /**
   * Declares a graph output. When `value` is not already called `name`, an Identity node gives it
   * that name, so building blocks never need to know the final output names.
   */
  output(value: string, dtype: DType, shape: Shape, name: string = value): string {
    this.requireDefined(value);
    const known = this.values.get(value);
    if (known !== undefined && known !== dtype) {
      throw new Error(`output ${name}: value ${value} is ${known}, declared ${dtype}`);
    }
    if (name !== value) this.node('Identity', [value], { name, outputs: [name] });
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** Adds a named weight. Data is converted to the dtype's layout (fp32 → fp16 included). */
  initializer<D extends DType>(name: string, dtype: D, dims: readonly number[], data: HostData<D>): string {
    const { bytes, length } = tensorBytes(dtype, data);
    if (length !== elementCount(dims)) {
      throw new Error(`initializer ${name}: ${length} values for dims [${dims.join(', ')}]`);
    }
    this.define(name, dtype);
    this.initializers.push({ name, dtype, dims: [...dims], bytes });
    return name;
  }

  /**
   * A constant with a generated name; `dims` defaults to a 1-D tensor of the values.
   * Small identical constants are created once and shared.
   */
  constant<D extends DType>(dtype: D, values: HostData<D>, dims: readonly number[] = [values.length]): string {
    const { bytes, length } = tensorBytes(dtype, values);
    let key: string | undefined;
    if (length <= SHARED_CONSTANT_MAX_ELEMENTS) {
      key = `${dtype}|${dims.join(',')}|${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
      const existing = this.sharedConstants.get(key);
      if (existing) return existing;
    }
    const name = this.uniqueValueName(`const_${dtype}_${this.initializers.length}`);
    this.initializer(name, dtype, dims, values);
    if (key) this.sharedConstants.set(key, name);
    return name;
  }

  /** A rank-0 constant. */
  scalar(dtype: DType, value: number): string {
    const data = dtype === 'bool' ? [value !== 0] : [value];
    return this.constant(dtype, data as HostData<typeof dtype>, []);
  }

  /** Appends a node and returns its output names. Inputs must already be defined ('' = omitted). */
  node(opType: string, inputs: readonly string[], options: NodeOptions = {}): string[] {
    for (const input of inputs) if (input !== '') this.requireDefined(input, `${opType} input`);
    const domain = options.domain ?? ONNX_DOMAIN;
    this.useDomain(domain);
    const nodeName = this.uniqueNodeName(options.name ?? opType);
    const outputSpec = options.outputs ?? 1;
    const outputs =
      typeof outputSpec === 'number'
        ? Array.from({ length: outputSpec }, (_, i) => (outputSpec === 1 ? `${nodeName}/output` : `${nodeName}/output_${i}`))
        : [...outputSpec];
    const inferred = inferOutputDtypes(
      opType,
      domain,
      inputs.map((i) => (i === '' ? undefined : this.values.get(i))),
      options.attributes,
      outputs.length,
    );
    // '' marks an optional output the node does not produce (ONNX's convention).
    outputs.forEach((output, i) => output !== '' && this.define(output, options.outputDtypes?.[i] ?? inferred[i]));
    this.nodes.push({
      name: nodeName,
      op_type: opType,
      domain,
      input: [...inputs],
      output: outputs,
      attribute: encodeAttributes(options.attributes),
    });
    return outputs;
  }

  /**
   * Defines a value this graph reads without declaring it: a Loop body's view of the outer graph's
   * values (ONNX subgraphs see every name of their enclosing scopes).
   */
  outerValue(name: string, dtype?: DType): string {
    this.define(name, dtype);
    return name;
  }

  /**
   * Appends ready-made nodes (e.g. another graph's, renamed by inlineGraph) whose inputs must already
   * be defined; their outputs become defined, with the element types `dtypes` gives (others unknown).
   */
  adoptNodes(nodes: readonly NodeProto[], dtypes: Readonly<Record<string, DType>> = {}): void {
    for (const node of nodes) {
      for (const input of node.input) if (input !== '') this.requireDefined(input, `${node.op_type} input`);
      if (this.nodeNames.has(node.name)) throw new Error(`node ${node.name} is defined twice`);
      this.nodeNames.add(node.name);
      for (const output of node.output) if (output !== '') this.define(output, dtypes[output]);
      this.useDomain(node.domain ?? ONNX_DOMAIN);
      this.nodes.push(node);
    }
  }

  /** Adds an initializer as an already-encoded TensorProto (e.g. one that points into external data). */
  adoptInitializer(tensor: TensorProto, dtype?: DType): string {
    if (!tensor.name) throw new Error('an adopted initializer needs a name');
    this.define(tensor.name, dtype);
    this.adoptedInitializers.push(tensor);
    return tensor.name;
  }

  /** Appends a single-output node and returns the output name. */
  op(opType: string, inputs: readonly string[], attributes?: Attributes, options: Omit<NodeOptions, 'attributes' | 'outputs'> = {}): string {
    return this.node(opType, inputs, { ...options, attributes, outputs: 1 })[0];
  }

  /** Runs `build` with node names prefixed by `prefix/` (nested scopes join with '/'). */
  scope<T>(prefix: string, build: () => T): T {
    this.scopes.push(prefix);
    try {
      return build();
    } finally {
      this.scopes.pop();
    }
  }

  /** Element type of a defined value; throws when it cannot be known. */
  dtypeOf(name: string): DType {
    this.requireDefined(name);
    const dtype = this.values.get(name);
    if (dtype === undefined) throw new Error(`the element type of ${name} is not known; pass outputDtypes`);
    return dtype;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Whether a node of this graph computes `name` (not an input, an initializer or an outer value). */
  isNodeOutput(name: string): boolean {
    return this.nodes.some((node) => node.output.includes(name));
  }

  importOpset(domain: string, version: number): void {
    this.opsets.set(domain, version);
    this.raiseIrVersionFor(domain, version);
  }

  /**
   * Imports `domain` at `version` or later: keeps a newer import. For nodes taken from a graph built
   * at a newer opset (inlining); the IR version follows the ai.onnx opset.
   */
  requireOpset(domain: string, version: number): void {
    if ((this.opsets.get(domain) ?? -1) < version) this.importOpset(domain, version);
  }

  setMetadata(key: string, value: string): void {
    this.metadata.set(key, value);
  }

  /** Total bytes of all initializers: what decides whether weights go to an external file. */
  initializerBytes(): number {
    return this.initializers.reduce((sum, init) => sum + init.bytes.byteLength, 0);
  }

  /**
   * Removes the nodes whose outputs nothing reads (no other node, no graph output, no subgraph), until
   * none is left: an inlined graph's outputs that its caller ignores are then not computed at all.
   * Returns how many nodes went.
   */
  pruneUnusedNodes(): number {
    const before = this.nodes.length;
    for (;;) {
      const read = new Set<string>(this.outputs.map((o) => o.name));
      for (const node of this.nodes) {
        for (const input of node.input) read.add(input);
        for (const attribute of node.attribute ?? []) if (attribute.g) for (const name of namesReadBy(attribute.g)) read.add(name);
      }
      const kept = this.nodes.filter((node) => node.output.some((output) => output !== '' && read.has(output)));
      if (kept.length === this.nodes.length) return before - kept.length;
      this.nodes.splice(0, this.nodes.length, ...kept);
    }
  }

  toGraph(): BuiltGraph {
    return {
      name: this.name,
      irVersion: this.irVersion,
      producerName: this.producerName,
      opsets: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      inputs: this.inputs,
      outputs: this.outputs,
      initializers: this.initializers,
      adoptedInitializers: this.adoptedInitializers,
      nodes: this.nodes,
      metadata: [...this.metadata].map(([key, value]) => ({ key, value })),
    };
  }

  /** The model with every weight inline (subject to protobuf's 2 GB limit). */
  toModel(): ModelProto {
    return buildModelProto(this.toGraph());
  }

  toBytes(): Uint8Array {
    return encodeModel(this.toModel());
  }

  /** Writes `path`, and `path + '.data'` when the weights are too large to stay inline. */
  save(path: string, options: SaveOptions = {}): SavedModel {
    return saveModel(this.toGraph(), path, options);
  }

  private define(name: string, dtype: DType | undefined): void {
    if (name === '') throw new Error('empty value name');
    if (this.values.has(name)) throw new Error(`value ${name} is defined twice`);
    this.values.set(name, dtype);
  }

  private requireDefined(name: string, role = 'value'): void {
    if (!this.values.has(name)) throw new Error(`${role} ${name} is not defined yet`);
  }

  private raiseIrVersionFor(domain: string, version: number): void {
    if (domain !== ONNX_DOMAIN) return;
    for (const [opset, ir] of IR_VERSION_FOR_OPSET) if (version >= opset && this.irVersion < ir) this.irVersion = ir;
  }

  private useDomain(domain: string): void {
    if (this.opsets.has(domain)) return;
    const version = KNOWN_DOMAIN_VERSIONS[domain];
    if (version === undefined) throw new Error(`domain ${domain} needs importOpset() first`);
    this.opsets.set(domain, version);
  }

  private uniqueNodeName(base: string): string {
    const scoped = [...this.scopes, base].join('/');
    let name = scoped;
    for (let n = 2; this.nodeNames.has(name); n++) name = `${scoped}_${n}`;
    this.nodeNames.add(name);
    return name;
  }

  /** A value name not defined yet, under the current scope: for naming some outputs of a node and omitting others. */
  freshValueName(base: string): string {
    return this.uniqueValueName([...this.scopes, base].join('/'));
  }

  private uniqueValueName(base: string): string {
    let name = base;
    for (let n = 2; this.values.has(name); n++) name = `${base}_${n}`;
    return name;
  }
}

export type { DType, HostData, SavedModel, SaveOptions };

/** Every value name a graph's nodes read, its nested subgraphs' included (outer-scope references among them). */
function namesReadBy(graph: GraphProto): string[] {
  return graph.node.flatMap((node) => [...node.input, ...(node.attribute ?? []).flatMap((a) => (a.g ? namesReadBy(a.g) : []))]);
}
