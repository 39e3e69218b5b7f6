/**
 * Full-vocabulary logits for a few hidden rows, for sampling. The model contract's graphs return
 * only argmax/top-k, but a decoder's `hidden` output is exactly its LM head's input, so sampling
 * runs this small extra graph (hidden [N,d] → logits [N,V] float32) on just the rows it needs:
 * one row per visited tree node, never [S,V] for a whole tree. Its weight is the decoder's LM head,
 * read from the model folder ([V,d] rows, HeadWeights.forModel).
 */
import type * as ort from 'onnxruntime-node';
import type { FloatData } from '../model/float-data.js';
import { HeadWeights } from '../model/head-weights.js';
import type { ModelFolder } from '../model/model-folder.js';
import { castTo } from '../model/onnx/basic-ops.js';
import { GraphBuilder } from '../model/onnx/builder.js';
import type { FloatDType } from '../model/onnx/dtypes.js';
import type { Ort } from '../model/ort-runtime.js';
import { byteSize, type Phase, type RunMeter } from './meter.js';

export class LogitsHead {
  private constructor(
    private readonly ort: Ort,
    readonly session: ort.InferenceSession,
    readonly hiddenSize: number,
    readonly vocabSize: number,
    private readonly dtype: FloatDType,
  ) {}

  /** The LM head of the folder's target or plain draft model. */
  static async create(ortModule: Ort, options: ort.InferenceSession.SessionOptions, folder: ModelFolder, role: 'target' | 'draft'): Promise<LogitsHead> {
    const dtype = folder.config.dtype;
    const weights = HeadWeights.forModel(folder, role);
    const { vocabSize, hiddenSize } = weights;
    const b = new GraphBuilder(`fr-spec-${role}-sampling-logits`);
    const hidden = b.input('hidden', dtype, ['rows', hiddenSize]);
    const table = b.initializer('lm_head.weight', dtype, [vocabSize, hiddenSize], weights.readRows(Array.from({ length: vocabSize }, (_, i) => i), dtype));
    const logits = b.op('Gemm', [hidden, table], { transB: 1 });
    b.output(castTo(b, logits, 'float32'), 'float32', ['rows', vocabSize], 'logits');
    const session = await ortModule.InferenceSession.create(b.toBytes(), options);
    return new LogitsHead(ortModule, session, hiddenSize, vocabSize, dtype);
  }

  /** [N, V] logits for the rows of `hidden` ([N, d]). */
  async logits(hidden: FloatData, meter: RunMeter, phase: Phase): Promise<Float32Array> {
    const rows = hidden.length / this.hiddenSize;
    const input = new this.ort.Tensor(this.dtype, hidden, [rows, this.hiddenSize]);
    const out = await meter.measure('logits', phase, byteSize(hidden), () => this.session.run({ hidden: input }), (r) => byteSize(r.logits.data as Float32Array));
    return out.logits.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
