/**
 * Reading a decoded graph the way graph rewrites do (src/model/fused): which node computes a value, and
 * a node's attributes.
 */
import type { AttributeProto, NodeProto } from './proto.js';

/** Each value computed by one of `nodes`, mapped to the node that computes it. */
export function producersOf(nodes: readonly NodeProto[]): Map<string, NodeProto> {
  return new Map(nodes.flatMap((node) => node.output.map((output) => [output, node] as const)));
}

export function attributeOf(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** The INT attribute `name` of `node` as a number, or undefined when the node does not set it. */
export function intAttributeOf(node: NodeProto, name: string): number | undefined {
  const value = attributeOf(node, name)?.i;
  return value === undefined ? undefined : Number(value);
}
