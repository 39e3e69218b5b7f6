/**
 * A 32-token byte-level BPE tokenizer (Llama-3's special tokens, newline, space and the letters a–x,
 * no merges), so CLI tests can encode prompts and decode output for 32-token models.
 */
const SPECIAL = ['<unk>', '<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
/** Byte-level BPE writes "\n" as Ċ and " " as Ġ. */
const PIECES = ['Ċ', 'Ġ', ...'abcdefghijklmnopqrstuvwx'];

export const TINY_VOCAB_SIZE = SPECIAL.length + PIECES.length;

const LLAMA3_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

export function tinyTokenizerFiles(): Record<string, string> {
  const vocab = Object.fromEntries([...SPECIAL, ...PIECES].map((token, id) => [token, id]));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  const config = { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', chat_template: LLAMA3_TEMPLATE, clean_up_tokenization_spaces: false };
  return {
    'tokenizer.json': JSON.stringify(tokenizer),
    'tokenizer_config.json': JSON.stringify(config),
    'generation_config.json': JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 5] }),
  };
}
