/**
 * Output element types of the operators the builder's users emit, so that building blocks can ask
 * `dtypeOf(name)` (e.g. to create an epsilon constant of the right type). Shapes are not inferred.
 */
import type { Attributes } from './attributes.js';
import { dtypeFromOnnx, type DType } from './dtypes.js';

/** Ops whose single output has the element type of their first input. */
const SAME_AS_FIRST_INPUT = new Set([
  'Abs', 'Add', 'Concat', 'Cos', 'Div', 'Exp', 'Expand', 'Flatten', 'Gather', 'GatherElements', 'Gemm',
  'Identity', 'LogSoftmax', 'Range', 'MatMul', 'Max', 'Min', 'Mul', 'Neg', 'Pow', 'Reciprocal', 'ReduceMax',
  'ReduceMean', 'ReduceSum', 'Relu', 'Reshape', 'Sigmoid', 'Sin', 'Slice', 'Softmax', 'Split', 'Sqrt',
  'Squeeze', 'Sub', 'Tanh', 'Tile', 'Transpose', 'Unsqueeze',
]);

const ALWAYS_BOOL = new Set(['Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Not', 'And', 'Or', 'IsNaN', 'IsInf']);
const ALWAYS_INT64 = new Set(['ArgMax', 'ArgMin', 'Shape', 'Size', 'NonZero']);

/** Returns one entry per output; undefined where the type is not known. */
export function inferOutputDtypes(
  opType: string,
  domain: string,
  inputDtypes: readonly (DType | undefined)[],
  attributes: Attributes | undefined,
  outputCount: number,
): (DType | undefined)[] {
  const all = (dtype: DType | undefined) => Array.from({ length: outputCount }, () => dtype);
  if (domain !== '') return all(undefined);
  if (SAME_AS_FIRST_INPUT.has(opType)) return all(inputDtypes[0]);
  if (ALWAYS_BOOL.has(opType)) return all('bool');
  if (ALWAYS_INT64.has(opType)) return all('int64');
  switch (opType) {
    case 'Cast': {
      const to = attributes?.to;
      return all(typeof to === 'number' ? dtypeFromOnnx(to) : undefined);
    }
    case 'Where':
      return all(inputDtypes[1]);
    case 'TopK':
      return [inputDtypes[0], 'int64'];
    default:
      return all(undefined);
  }
}
