import { expect } from 'chai';
import { resolveDecoderConfig, type HfDecoderConfig } from '../../src/model/llama-config.js';
import { UserError } from '../../src/util/errors.js';

const BASE: HfDecoderConfig = {
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  rms_norm_eps: 1e-6,
  vocab_size: 100,
};

describe('model/llama-config', () => {
  it('fills in the Llama defaults', () => {
    expect(resolveDecoderConfig(BASE)).to.deep.equal({
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 8,
      numKvHeads: 8,
      headDim: 8,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: { type: 'default' },
      vocabSize: 100,
      tieWordEmbeddings: false,
      qkvBias: false,
      outputBias: false,
    });
  });

  it('gives Qwen2 q/k/v biases but no output bias; Llama attention_bias covers both', () => {
    const qwen = resolveDecoderConfig({ ...BASE, model_type: 'qwen2' });
    expect([qwen.qkvBias, qwen.outputBias]).to.deep.equal([true, false]);
    const llama = resolveDecoderConfig({ ...BASE, model_type: 'llama', attention_bias: true });
    expect([llama.qkvBias, llama.outputBias]).to.deep.equal([true, true]);
  });

  it('reads Llama-3 rope scaling under rope_type or type', () => {
    const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const expected = { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    expect(resolveDecoderConfig({ ...BASE, rope_scaling: { rope_type: 'llama3', ...scaling } }).ropeScaling).to.deep.equal(expected);
    expect(resolveDecoderConfig({ ...BASE, rope_scaling: { type: 'llama3', ...scaling } }).ropeScaling).to.deep.equal(expected);
  });

  it('reads transformers 5.x rope_parameters in place of rope_theta / rope_scaling', () => {
    const v5 = resolveDecoderConfig({
      ...BASE,
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    expect(v5.ropeTheta).to.equal(500000);
    expect(v5.ropeScaling).to.deep.equal({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    const plain = resolveDecoderConfig({ ...BASE, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
    expect([plain.ropeTheta, plain.ropeScaling]).to.deep.equal([1e6, { type: 'default' }]);
  });

  it('accepts Qwen2 configs whose layers all use full attention', () => {
    const qwen = resolveDecoderConfig({ ...BASE, model_type: 'qwen2', use_sliding_window: false, layer_types: ['full_attention', 'full_attention'] });
    expect(qwen.numLayers).to.equal(2);
  });

  it('rejects what it cannot build, as UserErrors', () => {
    const cases: [Partial<HfDecoderConfig> & Record<string, unknown>, RegExp][] = [
      [{ model_type: 'gpt2' }, /model_type gpt2 is not supported/],
      [{ num_key_value_heads: 3 }, /8 attention heads are not a multiple of 3 KV heads/],
      [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type "yarn" is not supported/],
      [{ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling.low_freq_factor must be a positive number/],
      [{ hidden_size: 0 }, /hidden_size must be a positive integer/],
      [{ mlp_bias: true }, /mlp_bias is not supported/],
      [{ head_dim: 7 }, /head dimension 7 must be an even integer/],
      [{ model_type: 'qwen2', use_sliding_window: true }, /sliding-window attention is not supported/],
      [{ layer_types: ['full_attention', 'sliding_attention'] }, /sliding-window attention is not supported \(layer_types has "sliding_attention"\)/],
      [{ rope_parameters: { rope_type: 'dynamic', rope_theta: 10000, factor: 2 } }, /rope_scaling type "dynamic" is not supported/],
    ];
    for (const [override, pattern] of cases) {
      expect(() => resolveDecoderConfig({ ...BASE, ...override } as HfDecoderConfig, 'cfg'))
        .to.throw(UserError, pattern)
        .with.property('message')
        .that.match(/^cfg: /);
    }
  });
});
