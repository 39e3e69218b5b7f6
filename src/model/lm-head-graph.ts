/**
 * The draft LM head graph of the contract: for each input row, the top-k tokens and their
 * log-probabilities (log-softmax over the head's own vocabulary), never the full logits.
 *
 * Inputs:  hidden [N,d] (model float type), top_k [1] int64.
 * Outputs: topk_ids [N,k] int64 (full-vocabulary ids), topk_logprobs [N,k] float32.
 *
 * The same builder makes the full head (exported as lm_head.onnx, vocabulary = all V ids) and an
 * FR-Spec subset head (built in memory at load time from rows of the full head, in the head's own
 * storage: float rows, or int8 rows with their scales): the subset's ids are an initializer and the
 * graph maps subset indices back to full-vocabulary ids.
 */
import { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import { logSoftmaxLastAxis, mapSubsetIds } from './onnx/ops.js';
import { setGraphMetadata } from './llama-graph.js';
import { VocabTable, type StoredTable } from './vocab-table.js';

export const HEAD_IO = {
  hidden: 'hidden',
  topK: 'top_k',
  topkIds: 'topk_ids',
  topkLogprobs: 'topk_logprobs',
} as const;

/**
 * The head weight's name; rows are vocabulary ids ([V,d], HF's lm_head layout). An int8 head stores
 * it as HEAD_WEIGHT + '_quantized' and '_scale' (vocab-table.ts).
 */
export const HEAD_WEIGHT = 'lm_head.weight';
const SUBSET_IDS = 'subset_ids';
export const DIM_ROWS = 'rows';
export const DIM_K = 'k';

export interface LmHeadGraphInput {
  /** The graph's float type (hidden states). */
  dtype: FloatDType;
  hiddenSize: number;
  /** Row-major [rows, d]: one row per vocabulary entry of the head, as it is to be stored. */
  weights: StoredTable;
  /** The full-vocabulary id of each row, for a subset head; absent for the full head. */
  vocabIds?: ArrayLike<number>;
  name?: string;
}

export function buildLmHeadGraph(input: LmHeadGraphInput): GraphBuilder {
  const { dtype, hiddenSize: d, weights, vocabIds } = input;
  const values = weights.kind === 'float' ? weights.data.length : weights.values.length;
  const rows = values / d;
  if (!Number.isInteger(rows)) throw new Error(`head weight of ${values} values is not a whole number of rows of ${d}`);
  if (vocabIds && vocabIds.length !== rows) throw new Error(`${vocabIds.length} subset ids for ${rows} head rows`);
  const b = new GraphBuilder(input.name ?? (vocabIds ? 'fr-spec-lm-head-subset' : 'fr-spec-lm-head'));
  const hidden = b.input(HEAD_IO.hidden, dtype, [DIM_ROWS, d]);
  const k = b.input(HEAD_IO.topK, 'int64', [1]);

  // Gemm with transB multiplies by the [V,d] rows as stored, so selecting a subset is a row copy.
  const logits = new VocabTable(b, HEAD_WEIGHT, weights, rows, d, dtype).scores(hidden);
  const [logprobs, indices] = b.node('TopK', [logSoftmaxLastAxis(b, logits), k], { outputs: 2, attributes: { axis: -1, largest: 1, sorted: 1 } });
  const ids = vocabIds ? mapSubsetIds(b, b.initializer(SUBSET_IDS, 'int64', [rows], Array.from(vocabIds)), indices) : indices;
  b.output(ids, 'int64', [DIM_ROWS, DIM_K], HEAD_IO.topkIds);
  b.output(logprobs, 'float32', [DIM_ROWS, DIM_K], HEAD_IO.topkLogprobs);

  setGraphMetadata(b, vocabIds ? 'lm_head_subset' : 'lm_head', dtype);
  b.setMetadata('fr-spec.head_vocab_size', String(rows));
  return b;
}
