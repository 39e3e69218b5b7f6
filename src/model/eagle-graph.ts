/**
 * The EAGLE-1/2 draft head graph of the contract:
 *
 *   out = layers(fc([embed_target(input_ids); feature]))
 *
 * where layer 0 has no input norm (its input comes from the target's final norm) and there is no
 * final norm; `out` is fed back as the next step's feature and goes through the target's LM head
 * (lm_head.onnx) to give draft tokens.
 *
 * Inputs:  input_ids [1,S] int64, feature [1,S,d], position_ids [1,S] int64,
 *          attention_bias [1,1,S,P+S] float32, past_key_i / past_value_i [1,P,kvH,D].
 * Outputs: out [1,S,d], new_key_i / new_value_i [1,S,kvH,D].
 */
import { UserError } from '../util/errors.js';
import type { EagleArchitecture } from './eagle-config.js';
import { declareDecoderInputs, decoderGraphBuilder, decoderStack, DIM_SEQUENCE, embeddingTable, loadDecoderLayerWeights, residualValue, setGraphMetadata, TARGET_IO, type GraphOps } from './llama-graph.js';
import type { GraphBuilder } from './onnx/builder.js';
import type { FloatDType } from './onnx/dtypes.js';
import { linear } from './onnx/ops.js';
import { WeightLoader, type Float32WeightSource, type WeightStorage } from './weight-loader.js';

export const EAGLE_IO = {
  ...TARGET_IO,
  feature: 'feature',
  out: 'out',
} as const;

export interface EagleGraphOptions {
  dtype: FloatDType;
  /** How the weights are stored; default: in `dtype`, the embedding table as floats. */
  storage?: WeightStorage;
  /** Default 'standard'. */
  ops?: GraphOps;
  name?: string;
}

/**
 * @param head the EAGLE checkpoint (`fc.*`, `layers.N.*`)
 * @param target the target checkpoint, for `model.embed_tokens.weight`
 */
export function buildEagleDraftGraph(eagle: EagleArchitecture, head: Float32WeightSource, target: Float32WeightSource, options: EagleGraphOptions): GraphBuilder {
  const { dtype } = options;
  const arch = eagle.layers;
  const d = arch.hiddenSize;
  if (eagle.fcBias && !head.has('fc.bias')) {
    throw new UserError('the checkpoint has no fc.bias, but its config.json sets "bias": true (or leaves it out, which means true); set "bias": false for a head without it');
  }
  const ops = options.ops ?? 'standard';
  const b = decoderGraphBuilder(options.name ?? 'fr-spec-eagle', ops);
  const headWeights = new WeightLoader(b, head, dtype, options.storage);
  const targetWeights = new WeightLoader(b, target, dtype, options.storage);

  const inputs = declareDecoderInputs(b, arch.numLayers, arch, dtype);
  const feature = b.input(EAGLE_IO.feature, dtype, [1, DIM_SEQUENCE, d]);

  const embedTable = embeddingTable(targetWeights, { vocabSize: arch.vocabSize, hiddenSize: d });
  const fcWeight = headWeights.linearWeight('fc.weight', 2 * d, d);
  const fcBias = eagle.fcBias ? headWeights.tensor('fc.bias', [d]) : undefined;
  const layers = Array.from({ length: arch.numLayers }, (_, i) => loadDecoderLayerWeights(headWeights, arch, `layers.${i}`, i !== 0, ops));

  // EAGLE's order: the token's embedding first, then the feature.
  const fused = b.scope('fc', () => linear(b, b.op('Concat', [embedTable.lookup(inputs.inputIds), feature], { axis: -1 }), fcWeight, fcBias));
  const out = residualValue(b, decoderStack(b, fused, layers, arch, inputs, dtype, ops));
  b.output(out, dtype, [1, DIM_SEQUENCE, d], EAGLE_IO.out);

  setGraphMetadata(b, 'eagle', dtype, arch, ops);
  return b;
}
