/**
 * Text in and out of the engine: prompts to token ids (plain or as a chat turn) and committed ids
 * back to text, streamed as it becomes printable.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer/load.js';
import { UserError } from '../util/errors.js';
import { renderChat } from './chat-template.js';

export class GenerationTokenizer {
  private constructor(
    readonly loaded: LoadedTokenizer,
    private readonly tokenizer: Tokenizer,
  ) {}

  /** The tokenizer a model folder carries (tokenizer.json + tokenizer_config.json). */
  static async load(dir: string): Promise<GenerationTokenizer> {
    const loaded = await loadTokenizer(dir);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(loaded.json, loaded.config);
    } catch (error) {
      throw new UserError(`cannot load the tokenizer in ${dir}: ${(error as Error).message}`);
    }
    return new GenerationTokenizer(loaded, tokenizer);
  }

  get stopIds(): readonly number[] {
    return this.loaded.info.stopIds;
  }

  /** Ids for a prompt: BOS (when the tokenizer has one) and the text, or the text as a user turn of the chat template. */
  async encodePrompt(text: string, options: { chat?: boolean } = {}): Promise<number[]> {
    if (options.chat) {
      const rendered = renderChat(this.loaded, [{ role: 'user', content: text }]);
      return this.tokenizer.encode(rendered, { add_special_tokens: false }).ids;
    }
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    const bos = this.loaded.info.bosId;
    return bos !== null && ids[0] !== bos ? [bos, ...ids] : ids;
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }
}

/**
 * Incremental detokenization: decodes everything generated so far and hands out what is new,
 * holding back a trailing U+FFFD (a UTF-8 sequence split across tokens) until it completes.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  push(ids: readonly number[]): string {
    this.ids.push(...ids);
    const text = this.decode(this.ids);
    const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
    return this.take(stable);
  }

  /** Whatever is left, replacement characters included. */
  flush(): string {
    return this.take(this.decode(this.ids));
  }

  private take(text: string): string {
    if (text.length <= this.emitted) return '';
    const delta = text.slice(this.emitted);
    this.emitted = text.length;
    return delta;
  }
}
