/**
 * Rotary position embeddings as in HF Llama ("rotate half"): the inverse frequencies are computed
 * on the host (including Llama-3 frequency scaling) and stored as an initializer; cos/sin are
 * computed in the graph from position_ids, so tree positions need no host tables.
 */
import type { GraphBuilder } from './builder.js';
import { castTo } from './basic-ops.js';
import type { FloatDType } from './dtypes.js';

export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** `1 / theta^(2i / headDim)` for i < headDim/2, then the scaling's adjustment. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling = { type: 'default' }): Float32Array {
  if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head dimension, got ${headDim}`);
  const base = Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  switch (scaling.type) {
    case 'default':
      return Float32Array.from(base);
    case 'linear':
      return Float32Array.from(base, (f) => f / scaling.factor);
    case 'llama3':
      return Float32Array.from(base, (f) => llama3ScaledFrequency(f, scaling));
  }
}

/**
 * Llama-3.1 scaling: long wavelengths (low frequencies) are divided by `factor`, short ones kept,
 * and the band between is interpolated smoothly.
 */
function llama3ScaledFrequency(frequency: number, s: Extract<RopeScaling, { type: 'llama3' }>): number {
  const wavelength = (2 * Math.PI) / frequency;
  const lowFreqWavelength = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelength = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  if (wavelength < highFreqWavelength) return frequency;
  if (wavelength > lowFreqWavelength) return frequency / s.factor;
  const smooth = (s.originalMaxPositionEmbeddings / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return (1 - smooth) * (frequency / s.factor) + smooth * frequency;
}

export interface RopeTables {
  /** [batch, S, 1, headDim], broadcastable over heads in [batch, S, heads, headDim]. */
  cos: string;
  sin: string;
}

/**
 * cos/sin of `position * inv_freq` for int64 position_ids [batch, S], computed in fp32 and cast to
 * the model's float type. `invFreq` is an fp32 [headDim/2] initializer.
 */
export function ropeTables(b: GraphBuilder, positionIds: string, invFreq: string, dtype: FloatDType): RopeTables {
  return b.scope('rope', () => {
    const angles = ropeAngles(b, positionIds, invFreq);
    const bothHalves = b.op('Concat', [angles, angles], { axis: -1 });
    const headAxis = b.constant('int64', [2]);
    const table = (op: 'Cos' | 'Sin') => castTo(b, b.op('Unsqueeze', [b.op(op, [bothHalves]), headAxis]), dtype);
    return { cos: table('Cos'), sin: table('Sin') };
  });
}

/** `position * inv_freq` in fp32 for int64 position_ids [batch, S] and inv_freq [headDim/2] → [batch, S, headDim/2]. */
export function ropeAngles(b: GraphBuilder, positionIds: string, invFreq: string): string {
  return b.op('Mul', [b.op('Unsqueeze', [castTo(b, positionIds, 'float32'), b.constant('int64', [-1])]), invFreq]);
}

/** `x·cos + rotate_half(x)·sin` for x [batch, S, heads, headDim], rotate_half(x) = [-x2, x1]. */
export function applyRope(b: GraphBuilder, x: string, tables: RopeTables): string {
  return b.scope('apply_rope', () => {
    const [firstHalf, secondHalf] = b.node('Split', [x], { outputs: 2, attributes: { axis: -1, num_outputs: 2 } });
    const rotated = b.op('Concat', [b.op('Neg', [secondHalf]), firstHalf], { axis: -1 });
    return b.op('Add', [b.op('Mul', [x, tables.cos]), b.op('Mul', [rotated, tables.sin])]);
  });
}
