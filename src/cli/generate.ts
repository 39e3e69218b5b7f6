/**
 * fr-spec generate: decode with vanilla, sps, eagle2, fr-spec or ouroboros from a model folder,
 * streaming text to stdout as tokens are committed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkModelSupports, ENGINES, FUSED_METHODS, Generator, isMethod, METHODS, type EngineChoice, type GenerationResult, type Method, type MethodSettings } from '../engine/engine.js';
import { EngineModel } from '../engine/model.js';
import { DEMO_MODEL_DIR } from '../engine/paths.js';
import { formatProfile, summarizeProfiles, type GenerationProfile } from '../engine/profile.js';
import { formatStats } from '../engine/report.js';
import { DECODE_ATTENTIONS, type DecodeAttention } from '../model/fused/gqa-decode.js';
import { GenerationTokenizer, TextStream } from '../engine/text.js';
import { loadVocabMap } from '../engine/vocab-map.js';
import type { ExecutionProviderChoice } from '../model/ort-runtime.js';
import { UserError } from '../util/errors.js';
import { parsePositiveInt } from './parse.js';

interface GenerateFlags {
  model?: string;
  method: string;
  vocabMap?: string;
  prompt?: string;
  promptFile?: string;
  chat?: boolean;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  ep: ExecutionProviderChoice;
  treeDepth?: number;
  treeTopk?: number;
  treeTokens?: number;
  gamma?: number;
  json?: boolean;
  stats?: boolean;
  engine: EngineChoice;
  chunk?: number;
  decodeAttention: DecodeAttention;
  reserveRows?: boolean;
  profile?: string;
}

/** Where generate reads and writes; tests pass their own. */
export interface GenerateIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The prompt from standard input, or undefined when stdin is a terminal. */
  readStdin(): Promise<string | undefined>;
}

const processIo: GenerateIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async () => {
    if (process.stdin.isTTY) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

function parseNumber(option: string, check: (n: number) => boolean, expectation: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new InvalidArgumentError(`${option} expects ${expectation}, got "${value}"`);
    return n;
  };
}

export function registerGenerate(program: Command, io: GenerateIo = processIo): void {
  program
    .command('generate')
    .description('generate text with a lossless speculative decoding method (greedy output equals vanilla decoding token for token)')
    .argument('[prompt...]', 'the prompt (or --prompt, --prompt-file, or standard input)')
    .option('--model <dir>', 'model folder made by fr-spec export (default: the demo models in models/demo)')
    .option('--method <name>', `decoding method: ${METHODS.join(', ')}`, 'fr-spec')
    .option('--vocab-map <file|size>', 'fr-spec: the draft head\'s vocabulary, a freq_{r}.json or a size r looked up for the model (default 32768)')
    .option('--prompt <text>', 'the prompt')
    .option('--prompt-file <file>', 'read the prompt from a file')
    .option('--chat', 'wrap the prompt as a user turn of the tokenizer\'s chat template')
    .option('--max-new-tokens <n>', 'stop after this many new tokens', parsePositiveInt('--max-new-tokens'), 256)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', parseNumber('--temperature', (n) => n >= 0, 'a number ≥ 0'), 0)
    .option('--top-p <p>', 'nucleus sampling mass', parseNumber('--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]'), 1)
    .option('--seed <s>', 'random seed for sampling', parseNumber('--seed', Number.isInteger, 'a whole number'), 0)
    .addOption(new Option('--ep <provider>', 'execution provider').choices(['cuda', 'cpu', 'auto']).default('auto'))
    .option('--tree-depth <d>', 'eagle2 / fr-spec: most drafted tokens on one path (default 6 on CUDA, 4 on the CPU)', parsePositiveInt('--tree-depth'))
    .option('--tree-topk <k>', 'eagle2 / fr-spec: children per expanded node (default 10 on CUDA, 4 on the CPU)', parsePositiveInt('--tree-topk'))
    .option('--tree-tokens <n>', 'eagle2 / fr-spec: tokens verified per step, root included (default 60 on CUDA, 16 on the CPU)', parsePositiveInt('--tree-tokens'))
    .option('--gamma <g>', 'sps / ouroboros: drafted tokens per step (default 4 / 6)', parsePositiveInt('--gamma'))
    .addOption(new Option('--engine <kind>', 'host: one graph run per forward, KV caches on the host; fused: the whole decoding loop inside one ONNX Loop, caches kept by the execution provider (vanilla, eagle2, fr-spec, sps; greedy or sampling); auto: fused on CUDA where it applies, else host').choices([...ENGINES]).default('auto'))
    .option('--chunk <n>', 'fused engine: most new tokens per Loop run (the caches come back between runs; default: the whole generation in one run)', parsePositiveInt('--chunk'))
    .addOption(new Option('--decode-attention <kind>', 'vanilla\'s one-token decode steps, either engine: graph runs the target graph\'s own attention nodes; gqa one GroupQueryAttention node per layer (fewer nodes per step; --ops fused models; on CUDA only with ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 set, since onnxruntime 1.29\'s cuDNN path spends 23-66 ms per step in its first layer, and then no faster than graph; on fp16 it may pick other tokens than graph where logits nearly tie)').choices([...DECODE_ATTENTIONS]).default('graph'))
    .option('--reserve-rows', 'vanilla, either engine: the KV caches padded to the generation\'s length on the device and each step\'s row written in place, so every step has the same shapes (the default on CUDA, where the first attention of every step otherwise costs ≈ 1–3 ms at Llama-3-8B shape; both engines give the same tokens with it; on fp16 they may differ from decoding without it where logits nearly tie)')
    .option('--no-reserve-rows', 'vanilla: caches at their exact length, grown by one row per step (the default on the CPU)')
    .option('--json', 'print one JSON record (text, token ids, statistics) instead of streaming text')
    .option('--stats', 'print speed, acceptance, forwards, time split and bytes moved to stderr')
    .option('--profile <dir>', 'onnxruntime session profiling: write each session\'s trace into <dir> and print session.run, kernel and outside-kernel time as shares of wall time (stderr; --json: stats.profile)')
    .action(async (words: string[], flags: GenerateFlags) => runGenerate(words, flags, io));
}

async function runGenerate(words: string[], flags: GenerateFlags, io: GenerateIo): Promise<void> {
  const method = checkMethod(flags);
  const promptText = await readPrompt(words, flags, io);
  const modelDir = flags.model ?? DEMO_MODEL_DIR;
  if (!flags.model && !existsSync(modelDir)) {
    throw new UserError(`model folder models/demo not found; pass --model <dir>, or build the demo models with the recipe in training/ (looked in ${modelDir})`);
  }
  const profileDir = flags.profile === undefined ? undefined : resolve(flags.profile);
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const traces = () => (profileDir === undefined ? [] : readdirSync(profileDir).filter((f) => f.endsWith('.json')));
  const earlierTraces = new Set(traces());
  const model = await EngineModel.open(modelDir, { ep: flags.ep, profileDir });
  try {
    checkModelSupports(model, method);
    const tokenizer = await GenerationTokenizer.load(modelDir);
    const settings: MethodSettings = { method, gamma: flags.gamma, tree: { depth: flags.treeDepth, topK: flags.treeTopk, tokens: flags.treeTokens }, engine: flags.engine, chunk: flags.chunk, decodeAttention: flags.decodeAttention, reserveRows: flags.reserveRows };
    if (method === 'fr-spec') {
      const map = loadVocabMap(flags.vocabMap, { dir: modelDir, vocabSize: model.config.vocab_size, tokenizerVocabSize: tokenizer.loaded.info.vocabSize });
      for (const warning of map.warnings) io.stderr.write(`fr-spec: warning: ${warning}\n`);
      settings.vocabSubset = map.ids;
    }
    const generator = await Generator.create(model, settings);
    const prompt = await tokenizer.encodePrompt(promptText, { chat: flags.chat });
    const stream = new TextStream((ids) => tokenizer.decode(ids));
    const stopIds = [...new Set([...tokenizer.stopIds, ...model.config.eos_token_ids])];
    const options = {
      maxNewTokens: flags.maxNewTokens,
      sampling: { temperature: flags.temperature, topP: flags.topP },
      seed: flags.seed,
      stopIds,
      onTokens: flags.json ? undefined : (ids: readonly number[]) => io.stdout.write(stream.push(ids)),
    };
    let result: GenerationResult;
    try {
      result = await generator.generate(prompt, options);
      await generator.endProfiling();
    } finally {
      await generator.release();
    }
    let profile: GenerationProfile | undefined;
    if (profileDir !== undefined) {
      await model.endProfiling();
      profile = summarizeProfiles(traces().filter((f) => !earlierTraces.has(f)).map((f) => join(profileDir, f)), result.stats.milliseconds.total);
    }
    if (flags.json) {
      const record = jsonRecord(tokenizer.decode(result.tokens), prompt, result, generator, flags, modelDir, model.sessions.ep);
      io.stdout.write(`${JSON.stringify(profile ? { ...record, stats: { ...record.stats, profile } } : record)}\n`);
    } else io.stdout.write(`${stream.flush()}\n`);
    if (flags.stats) for (const line of formatStats(result.stats, result.stopReason)) io.stderr.write(`${line}\n`);
    if (profile) for (const line of formatProfile(profile)) io.stderr.write(`${line}\n`);
  } finally {
    await model.release();
  }
}

function jsonRecord(text: string, prompt: number[], result: GenerationResult, generator: Generator, flags: GenerateFlags, modelDir: string, ep: string) {
  const { method } = generator;
  const settings = {
    method,
    max_new_tokens: flags.maxNewTokens,
    temperature: flags.temperature,
    top_p: flags.topP,
    seed: flags.seed,
    ep,
    engine: generator.engine,
    ...(flags.chunk !== undefined && { chunk: flags.chunk }),
    ...(flags.decodeAttention !== 'graph' && { decode_attention: flags.decodeAttention }),
    ...(generator.reservesRows && { reserve_rows: true }),
    ...((method === 'eagle2' || method === 'fr-spec') && { tree: generator.treeShape }),
    ...((method === 'sps' || method === 'ouroboros') && { gamma: generator.gamma }),
    ...(generator.vocabSubsetSize !== undefined && { vocab_map_size: generator.vocabSubsetSize }),
  };
  return { text, tokens: result.tokens, prompt_tokens: prompt, stop_reason: result.stopReason, model: modelDir, settings, stats: result.stats };
}

function checkMethod(flags: GenerateFlags): Method {
  const { method } = flags;
  if (!isMethod(method)) throw new UserError(`unknown method "${method}"; choose one of ${METHODS.join(', ')}`);
  const tree = method === 'eagle2' || method === 'fr-spec';
  const drafted = method === 'sps' || method === 'ouroboros';
  const misplaced = (given: unknown, allowed: boolean, option: string, forWhat: string) => {
    if (given !== undefined && !allowed) throw new UserError(`${option} applies to ${forWhat}, not to --method ${method}`);
  };
  misplaced(flags.vocabMap, method === 'fr-spec', '--vocab-map', 'fr-spec');
  for (const [value, option] of [[flags.treeDepth, '--tree-depth'], [flags.treeTopk, '--tree-topk'], [flags.treeTokens, '--tree-tokens']] as const) misplaced(value, tree, option, 'eagle2 and fr-spec');
  misplaced(flags.gamma, drafted, '--gamma', 'sps and ouroboros');
  if (flags.engine === 'fused') {
    if (!FUSED_METHODS.includes(method)) throw new UserError(`--engine fused runs ${FUSED_METHODS.join(', ')}, not ${method}; use --engine host`);
  }
  if (flags.chunk !== undefined && (flags.engine === 'host' || !FUSED_METHODS.includes(method))) throw new UserError(`--chunk applies to the fused engine (${FUSED_METHODS.join(', ')}), not to --engine ${flags.engine} --method ${method}`);
  return method;
}

async function readPrompt(words: string[], flags: GenerateFlags, io: GenerateIo): Promise<string> {
  const given = [words.length > 0 ? 'a prompt argument' : undefined, flags.prompt !== undefined ? '--prompt' : undefined, flags.promptFile !== undefined ? '--prompt-file' : undefined].filter((s) => s !== undefined);
  if (given.length > 1) throw new UserError(`give the prompt once: got ${given.join(' and ')}`);
  let text: string | undefined;
  if (words.length > 0) text = words.join(' ');
  else if (flags.prompt !== undefined) text = flags.prompt;
  else if (flags.promptFile !== undefined) {
    if (!existsSync(flags.promptFile)) throw new UserError(`prompt file ${flags.promptFile} not found`);
    text = readFileSync(flags.promptFile, 'utf8');
  } else text = await io.readStdin();
  if (text === undefined) throw new UserError('no prompt: pass it as an argument, with --prompt or --prompt-file, or on standard input');
  if (text.trim() === '') throw new UserError('the prompt is empty');
  return text;
}
