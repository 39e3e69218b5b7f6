/**
 * Reads the config.json of an EAGLE-1/2 draft head (SafeAILab/EAGLE `cnets1.py`). The head is a
 * Llama decoder stack whose sizes come from its own config; its embedding and LM head are the
 * target's, so its hidden size and vocabulary must match the target's.
 */
import { UserError } from '../util/errors.js';
import { resolveDecoderConfig, type DecoderArchitecture, type HfDecoderConfig } from './llama-config.js';

export interface HfEagleConfig extends Partial<HfDecoderConfig> {
  /** Bias on `fc`; EAGLE's code defaults it to true when the key is absent. */
  bias?: boolean;
  /** Biases on q/k/v (heads trained for Qwen2 targets set it). */
  qkv_bias?: boolean;
  /** Only EAGLE-3 heads have a draft vocabulary of their own. */
  draft_vocab_size?: number;
}

export interface EagleArchitecture {
  /** Sizes of the head's decoder layers (`numLayers` layers; layer 0 has no input norm). */
  layers: DecoderArchitecture;
  /** Whether `fc` (Linear 2H → H over [embedding; feature]) has a bias. */
  fcBias: boolean;
}

export function resolveEagleConfig(config: HfEagleConfig, target: DecoderArchitecture, label = 'EAGLE config.json'): EagleArchitecture {
  if (config.draft_vocab_size !== undefined) {
    throw new UserError(`${label}: this looks like an EAGLE-3 head (it has draft_vocab_size); only EAGLE-1/2 heads are supported`);
  }
  if (config.hidden_size !== target.hiddenSize) {
    throw new UserError(`${label}: the EAGLE head's hidden_size ${String(config.hidden_size)} differs from the target's ${target.hiddenSize}`);
  }
  if (config.vocab_size !== undefined && config.vocab_size !== target.vocabSize) {
    throw new UserError(`${label}: the EAGLE head's vocab_size ${config.vocab_size} differs from the target's ${target.vocabSize}`);
  }
  // EAGLE's attention derives the head size from hidden_size / heads, has no o_proj bias, and has
  // q/k/v biases only when qkv_bias is set, whatever the model family.
  const layers = resolveDecoderConfig(
    {
      ...(config as HfDecoderConfig),
      model_type: 'llama',
      num_hidden_layers: config.num_hidden_layers ?? 1,
      head_dim: null,
      attention_bias: false,
      vocab_size: target.vocabSize,
      tie_word_embeddings: false,
    },
    label,
  );
  return { layers: { ...layers, qkvBias: config.qkv_bias ?? false }, fcBias: config.bias ?? true };
}
