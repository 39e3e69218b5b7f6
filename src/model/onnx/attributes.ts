/**
 * Node attribute values. Plain numbers are INT attributes (axis, perm, to, keepdims … are the
 * common case) and must be integers; floats are spelled out with `float()` / `floats()` so that
 * `epsilon: 1` can never silently become an INT.
 */
import { OnnxAttributeType, type AttributeProto, type TensorProto } from './proto.js';

export interface FloatAttribute {
  readonly kind: 'float';
  readonly value: number;
}
export interface FloatsAttribute {
  readonly kind: 'floats';
  readonly value: readonly number[];
}
export interface StringsAttribute {
  readonly kind: 'strings';
  readonly value: readonly string[];
}
export interface TensorAttribute {
  readonly kind: 'tensor';
  readonly value: TensorProto;
}

export type AttributeValue =
  | number
  | readonly number[]
  | string
  | FloatAttribute
  | FloatsAttribute
  | StringsAttribute
  | TensorAttribute;

export type Attributes = Record<string, AttributeValue | undefined>;

export const float = (value: number): FloatAttribute => ({ kind: 'float', value });
export const floats = (value: readonly number[]): FloatsAttribute => ({ kind: 'floats', value });
export const strings = (value: readonly string[]): StringsAttribute => ({ kind: 'strings', value });
export const tensorAttribute = (value: TensorProto): TensorAttribute => ({ kind: 'tensor', value });

const utf8 = new TextEncoder();

function checkInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value)) {
    throw new Error(`attribute ${name}: ${value} is not an integer; use float() for FLOAT attributes`);
  }
  return value;
}

export function encodeAttribute(name: string, value: AttributeValue): AttributeProto {
  if (typeof value === 'number') {
    return { name, type: OnnxAttributeType.INT, i: checkInteger(name, value) };
  }
  if (typeof value === 'string') {
    return { name, type: OnnxAttributeType.STRING, s: utf8.encode(value) };
  }
  if (Array.isArray(value)) {
    return { name, type: OnnxAttributeType.INTS, ints: value.map((v: number) => checkInteger(name, v)) };
  }
  const tagged = value as FloatAttribute | FloatsAttribute | StringsAttribute | TensorAttribute;
  switch (tagged.kind) {
    case 'float':
      return { name, type: OnnxAttributeType.FLOAT, f: tagged.value };
    case 'floats':
      return { name, type: OnnxAttributeType.FLOATS, floats: [...tagged.value] };
    case 'strings':
      return { name, type: OnnxAttributeType.STRINGS, strings: tagged.value.map((s) => utf8.encode(s)) };
    case 'tensor':
      return { name, type: OnnxAttributeType.TENSOR, t: tagged.value };
  }
}

export function encodeAttributes(attributes: Attributes | undefined): AttributeProto[] {
  if (!attributes) return [];
  return Object.entries(attributes)
    .filter((entry): entry is [string, AttributeValue] => entry[1] !== undefined)
    .map(([name, value]) => encodeAttribute(name, value));
}
