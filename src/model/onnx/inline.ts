/**
 * Inlining whole ONNX graphs into a GraphBuilder: the fused loops call the model folder's own graphs
 * (target, EAGLE head, LM heads) several times inside one Loop body, so their nodes are copied with
 * every value renamed under a per-call prefix, and their initializers are adopted once per source
 * graph into an outer graph.
 *
 * Initializers stored in the same external-data range (the target's embedding read by the EAGLE
 * graph, say) become one initializer, so a weight is loaded once however many graphs use it.
 */
import type { GraphBuilder } from './builder.js';
import { dtypeFromOnnx, type DType } from './dtypes.js';
import { OnnxAttributeType, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

export interface InlineCall {
  /** Value name (in the builder) for each of the graph's inputs. */
  inputs: Readonly<Record<string, string>>;
  /** Prefix of every node and value name this call defines; unique per call. */
  prefix: string;
}

/** A graph ready to be inlined: its initializers live (once) in `weights`' builder. */
export class InlinableGraph {
  private readonly initializerNames = new Map<string, string>();
  private readonly outputDtypes = new Map<string, DType | undefined>();

  /**
   * @param model the decoded graph
   * @param label prefix of its adopted initializers' names
   * @param weights the builder that takes the initializers (the outer graph of a Loop)
   * @param shared external-data ranges already adopted (pass the same map to every graph of one model)
   */
  constructor(
    readonly model: ModelProto,
    label: string,
    weights: GraphBuilder,
    shared: Map<string, string>,
  ) {
    for (const node of model.graph.node) {
      if (node.attribute.some((a) => a.type === OnnxAttributeType.GRAPH || a.type === OnnxAttributeType.GRAPHS)) {
        throw new Error(`graph ${model.graph.name}: node ${node.name} has a subgraph, which inlining does not rename`);
      }
    }
    // The graph's nodes keep their op versions only if the outer model imports the same opsets (or newer).
    for (const opset of model.opset_import) weights.requireOpset(opset.domain ?? '', opset.version);
    for (const init of model.graph.initializer) {
      const name = init.name!;
      const key = externalKey(init);
      const existing = key === undefined ? undefined : shared.get(key);
      if (existing !== undefined) {
        this.initializerNames.set(name, existing);
        continue;
      }
      const adopted = `${label}::${name}`;
      weights.adoptInitializer({ ...init, name: adopted }, dtypeFromOnnx(init.data_type));
      this.initializerNames.set(name, adopted);
      if (key !== undefined) shared.set(key, adopted);
    }
    for (const output of model.graph.output) {
      const elem = output.type?.tensor_type?.elem_type;
      this.outputDtypes.set(output.name, elem === undefined ? undefined : dtypeFromOnnx(elem));
    }
  }

  get inputNames(): string[] {
    const initializers = new Set(this.initializerNames.keys());
    return this.model.graph.input.map((i) => i.name).filter((name) => !initializers.has(name));
  }

  /** The builder's name, in `call`, of any value of the graph (an internal one too, e.g. logits before an ArgMax). */
  valueName({ inputs, prefix }: InlineCall, name: string): string {
    if (name === '') return name;
    return inputs[name] ?? this.initializerNames.get(name) ?? `${prefix}/${name}`;
  }

  /** Appends one call of the graph to `b`; returns the builder's name for each graph output. */
  call(b: GraphBuilder, { inputs, prefix }: InlineCall): Record<string, string> {
    const graphInputs = this.inputNames;
    for (const name of graphInputs) if (inputs[name] === undefined) throw new Error(`inlining ${this.model.graph.name}: no value for input ${name}`);
    for (const name of Object.keys(inputs)) if (!graphInputs.includes(name)) throw new Error(`inlining ${this.model.graph.name}: it has no input ${name}`);
    const rename = (name: string) => this.valueName({ inputs, prefix }, name);
    const nodes: NodeProto[] = this.model.graph.node.map((node) => ({
      ...node,
      name: `${prefix}/${node.name}`,
      input: node.input.map(rename),
      output: node.output.map(rename),
    }));
    const dtypes: Record<string, DType> = {};
    const outputs: Record<string, string> = {};
    for (const [name, dtype] of this.outputDtypes) {
      outputs[name] = rename(name);
      if (dtype !== undefined) dtypes[outputs[name]] = dtype;
    }
    b.adoptNodes(nodes, dtypes);
    return outputs;
  }

  /**
   * Declares the graph's outputs, under their own names, types and shapes, as outputs of `b` computed by
   * `outputs` (what `call` returned), except those in `except`: a model that wraps a call behind the
   * graph's own interface.
   */
  declareOutputs(b: GraphBuilder, outputs: Readonly<Record<string, string>>, except: ReadonlySet<string> = new Set()): void {
    for (const output of this.model.graph.output) {
      if (except.has(output.name)) continue;
      const tensor = output.type!.tensor_type!;
      const dims = tensor.shape?.dim.map((d) => ('dim_value' in d ? Number(d.dim_value) : d.dim_param)) ?? [];
      const dtype = this.outputDtypes.get(output.name);
      if (dtype === undefined) throw new Error(`graph ${this.model.graph.name}: output ${output.name} has element type ${tensor.elem_type}, which fr-spec does not read`);
      b.output(outputs[output.name], dtype, dims, output.name);
    }
  }
}

/** Where an external-data initializer's bytes are: equal keys mean the same stored tensor. */
function externalKey(init: TensorProto): string | undefined {
  if (!init.external_data || init.external_data.length === 0) return undefined;
  const entry = Object.fromEntries(init.external_data.map((e) => [e.key, e.value]));
  return `${entry.location}|${entry.offset ?? 0}|${entry.length ?? ''}|${init.data_type}|${init.dims.join(',')}`;
}
