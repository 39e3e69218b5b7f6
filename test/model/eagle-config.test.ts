import { expect } from 'chai';
import { resolveEagleConfig, type HfEagleConfig } from '../../src/model/eagle-config.js';
import { resolveDecoderConfig } from '../../src/model/llama-config.js';
import { UserError } from '../../src/util/errors.js';

const TARGET = resolveDecoderConfig({
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  head_dim: 16,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  vocab_size: 100,
});

/** As in EAGLE-LLaMA3-Instruct-8B's config, scaled down. */
const EAGLE: HfEagleConfig = {
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  vocab_size: 100,
  bias: false,
};

describe('model/eagle-config', () => {
  it('takes the head\'s own sizes, the target\'s vocabulary, and head_dim = hidden / heads', () => {
    const { layers, fcBias } = resolveEagleConfig({ ...EAGLE, head_dim: 32 }, TARGET);
    expect(layers).to.deep.include({ hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 16, ropeTheta: 500000, vocabSize: 100 });
    expect([layers.qkvBias, layers.outputBias, fcBias]).to.deep.equal([false, false, false]);
  });

  it('defaults fc\'s bias to on (EAGLE\'s default) and reads qkv_bias', () => {
    const { bias: _bias, ...withoutBias } = EAGLE;
    expect(resolveEagleConfig(withoutBias, TARGET).fcBias).to.equal(true);
    expect(resolveEagleConfig({ ...EAGLE, qkv_bias: true, model_type: 'qwen2' }, TARGET).layers).to.deep.include({ qkvBias: true, outputBias: false });
  });

  it('rejects heads that cannot serve the target', () => {
    const cases: [HfEagleConfig, RegExp][] = [
      [{ ...EAGLE, hidden_size: 32 }, /the EAGLE head's hidden_size 32 differs from the target's 64/],
      [{ ...EAGLE, vocab_size: 128 }, /the EAGLE head's vocab_size 128 differs from the target's 100/],
      [{ ...EAGLE, draft_vocab_size: 32 }, /EAGLE-3 head/],
      [{ ...EAGLE, rope_scaling: { type: 'dynamic', factor: 2 } }, /rope_scaling type "dynamic" is not supported/],
    ];
    for (const [config, pattern] of cases) expect(() => resolveEagleConfig(config, TARGET, 'eagle')).to.throw(UserError, pattern);
  });
});
