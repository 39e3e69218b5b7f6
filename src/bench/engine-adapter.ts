/**
 * The one place where `fr-spec bench` meets the decoding engine (src/engine): a model folder
 * opened with EngineModel, its tokenizer for prompts (chat template via the engine's renderChat,
 * no special tokens added, as Spec-Bench and FR-Spec tokenize), and one Generator per method.
 */
import { FUSED_METHODS, Generator, type MethodSettings } from '../engine/engine.js';
import { renderChat } from '../engine/chat-template.js';
import { EngineModel } from '../engine/model.js';
import { GenerationTokenizer } from '../engine/text.js';
import { readVocabMap } from '../engine/vocab-map.js';
import { UserError } from '../util/errors.js';
import type { BenchBackend, GenerationOptions, GenerationResult, MethodRunner, MethodRunnerFactory, MethodSpec, OpenBackend, PromptEncoder } from './types.js';

export const openEngineBackend: OpenBackend = async ({ modelDir, ep, engine, decodeAttention, reserveRows, onWarning }) => {
  const model = await EngineModel.open(modelDir, { ep });
  try {
    const tokenizer = await GenerationTokenizer.load(modelDir);
    const stopIds = [...new Set([...tokenizer.stopIds, ...model.config.eos_token_ids])];
    const prompts: PromptEncoder = {
      encodeChat: async (messages) => tokenizer.loaded.encode(await renderChat(tokenizer.loaded, messages)),
      encodePlain: (text) => tokenizer.loaded.encode(text),
    };
    const createRunner: MethodRunnerFactory = async (spec) => {
      // --engine fused covers what the loop can run (vanilla, eagle2, fr-spec, sps); ouroboros runs on the host.
      const fusable = FUSED_METHODS.includes(spec.method);
      const settings: MethodSettings = { method: spec.method, engine: engine === 'fused' && !fusable ? 'host' : engine };
      // The decode attention is vanilla's alone (the speculative methods verify trees with the exported graph).
      if (spec.method === 'vanilla') Object.assign(settings, { decodeAttention, reserveRows });
      if (spec.method === 'fr-spec') {
        const map = readVocabMap(vocabFileOf(spec), { dir: modelDir, vocabSize: model.config.vocab_size, tokenizerVocabSize: tokenizer.loaded.info.vocabSize });
        for (const warning of map.warnings) onWarning?.(warning);
        settings.vocabSubset = map.ids;
      }
      const generator = await Generator.create(model, settings);
      return engineRunner(spec.label, generator, tokenizer, stopIds);
    };
    const backend: BenchBackend = { device: model.sessions.ep, prompts, createRunner, close: () => model.release() };
    return backend;
  } catch (error) {
    await model.release();
    throw error;
  }
};

function vocabFileOf(spec: MethodSpec): string {
  if (!spec.vocabFile) throw new UserError(`${spec.label}: no vocabulary map file was resolved`);
  return spec.vocabFile;
}

function engineRunner(name: string, generator: Generator, tokenizer: GenerationTokenizer, stopIds: readonly number[]): MethodRunner {
  return {
    name,
    close: () => generator.release(),
    async generate(promptIds: readonly number[], options: GenerationOptions): Promise<GenerationResult> {
      // Every commit after the first token (which comes from the prompt's forward, not from a
      // decoding step) is one step's accepted drafts + 1.
      const commits: number[] = [];
      const result = await generator.generate(promptIds, {
        maxNewTokens: options.maxNewTokens,
        sampling: { temperature: options.temperature, topP: 1 },
        seed: options.seed,
        stopIds,
        onTokens: (tokens) => commits.push(tokens.length),
      });
      return {
        tokenIds: result.tokens,
        text: tokenizer.decode(result.tokens),
        newTokens: result.stats.newTokens,
        wallSeconds: result.stats.seconds,
        acceptLengths: commits.slice(1),
        targetForwards: result.stats.targetForwards,
      };
    },
  };
}
