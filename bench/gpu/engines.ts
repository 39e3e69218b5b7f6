/**
 * The fused device loop against the host engine, per method, on one model and one machine
 * (issue 7's measurement): tokens/s, τ, KiB moved per token, how many prompts' tokens differ from the
 * first engine's vanilla decoding and from the same method on the first engine with the same decode
 * attention (greedy), and the fraction of the HBM roofline reached.
 *
 *   node --import tsx bench/gpu/engines.ts MODEL_DIR [--ep cuda] [--methods vanilla,eagle2,fr-spec:32768]
 *        [--engines host,fused[,host+gqa,fused+gqa,host+reserved,fused+reserved,fused+gqa+reserved,host+exact,fused+exact]] [--max-new-tokens 256] [--repeats 2] [--bandwidth-gbs 3350] [--no-stop] [--allow-gqa-on-cuda]
 *        [--tree 6/10/60] [--prompts FILE.jsonl] [--limit N] [--strict] [--temperature T [--top-p P]] [--json OUT.json]
 *        [--no-mem-pattern] [--session-entry KEY=VALUE ...]
 *
 * Roofline: a decoding step must read the target's weights once, so at B GB/s of HBM bandwidth it
 * cannot produce more than τ × B / (target weight bytes) tokens per second (τ = 1 for vanilla).
 * Weight bytes are the target graph's initializers (each stored tensor once), i.e. what one forward
 * reads; pass the bandwidth measured on the machine (bench/gpu/bandwidth.py).
 * ms/step (vanilla) and ms/cycle (speculative methods) are τ ÷ tokens/s. In the fused loop a cycle has
 * a fixed shape (the whole tree is drafted and verified whatever is accepted), so on random weights
 * (bench/gpu/random-model.ts) the cycle time is the real model's while τ is not.
 * Engines: host, fused, auto, and host+gqa / fused+gqa (vanilla only: one-token steps with one
 * GroupQueryAttention per layer, --decode-attention gqa; other methods skip them, and their speedups are
 * also given against fused+gqa); host+reserved, fused+reserved and fused+gqa+reserved (vanilla only: the caches
 * padded to the generation's rows and written in place, so every step has the same shapes, --reserve-rows; the
 * default on CUDA) and host+exact, fused+exact (vanilla only: caches at their exact length, --no-reserve-rows).
 * Diagnostics: --no-mem-pattern turns off onnxruntime's memory patterns and --session-entry sets session
 * configuration entries, for every session including the fused loops (e.g. to see whether the first attention of
 * a vanilla step, docs/fused-loop.md, costs what it costs because of allocation). --allow-gqa-on-cuda runs the
 * +gqa engines on CUDA, which fr-spec refuses unless ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 (its cuDNN path: 23-66 ms in the first layer of every step), to time them under
 * onnxruntime's environment switches (e.g. ORT_ENABLE_CUDNN_FLASH_ATTENTION=0, ORT_ENABLE_XQA=1).
 * Prompts: --prompts takes a Spec-Bench-style JSONL (first turn of each line's "turns", or "prompt");
 * default: four built-in prompts. Chat template applied.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderChat } from '../../src/engine/chat-template.js';
import { Generator, reservesRowsByDefault, type EngineChoice, type MethodSettings } from '../../src/engine/engine.js';
import { EngineModel } from '../../src/engine/model.js';
import { GenerationTokenizer } from '../../src/engine/text.js';
import { loadVocabMap } from '../../src/engine/vocab-map.js';
import { OnnxDataLocation, decodeModel } from '../../src/model/onnx/proto.js';
import type { ExecutionProviderChoice } from '../../src/model/ort-runtime.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ep: { type: 'string', default: 'cuda' },
    methods: { type: 'string', default: 'vanilla,eagle2,fr-spec:32768' },
    engines: { type: 'string', default: 'host,fused' },
    'max-new-tokens': { type: 'string', default: '256' },
    repeats: { type: 'string', default: '2' },
    'bandwidth-gbs': { type: 'string' },
    'no-stop': { type: 'boolean', default: false },
    'no-mem-pattern': { type: 'boolean', default: false },
    'session-entry': { type: 'string', multiple: true },
    tree: { type: 'string' },
    prompts: { type: 'string' },
    limit: { type: 'string' },
    strict: { type: 'boolean', default: false },
    'allow-gqa-on-cuda': { type: 'boolean', default: false },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    json: { type: 'string' },
  },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: engines.ts MODEL_DIR [options]');
const maxNewTokens = Number(flags['max-new-tokens']);
const repeats = Number(flags.repeats);
const bandwidth = flags['bandwidth-gbs'] === undefined ? undefined : Number(flags['bandwidth-gbs']) * 1e9;
const sampling = flags.temperature === undefined ? undefined : { temperature: Number(flags.temperature), topP: flags['top-p'] === undefined ? 1 : Number(flags['top-p']) };
const tree = flags.tree ? (([depth, topK, tokens]) => ({ depth, topK, tokens }))(flags.tree.split('/').map(Number)) : undefined;

const BUILT_IN = [
  'The capital of France is',
  'Write a short story about a robot who learns to paint.',
  'Explain how a hash table works, with an example in Python.',
  'List five facts about the Moon.',
];
function promptTexts(): string[] {
  if (!flags.prompts) return BUILT_IN;
  const lines = readFileSync(flags.prompts, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const texts = lines.map((l) => {
    const item = JSON.parse(l) as { turns?: string[]; prompt?: string };
    return item.turns?.[0] ?? item.prompt ?? '';
  });
  return texts.slice(0, flags.limit ? Number(flags.limit) : texts.length);
}

/** Bytes of the target graph's weights (each stored tensor once). */
function targetWeightBytes(modelDir: string): number {
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { target: { file: string } };
  const model = decodeModel(readFileSync(join(modelDir, config.target.file)));
  const seen = new Set<string>();
  let bytes = 0;
  for (const init of model.graph.initializer) {
    if (init.data_location === OnnxDataLocation.EXTERNAL) {
      const entry = Object.fromEntries((init.external_data ?? []).map((e) => [e.key, e.value]));
      const key = `${entry.location}|${entry.offset}|${entry.length}`;
      if (seen.has(key)) continue;
      seen.add(key);
      bytes += Number(entry.length ?? 0);
    } else bytes += init.raw_data?.byteLength ?? 0;
  }
  return bytes;
}

// Diagnostics: onnxruntime settings other than the defaults, for every session (fused loops included).
const sessionEntries = Object.fromEntries(
  (flags['session-entry'] ?? []).map((entry) => {
    const at = entry.indexOf('=');
    if (at < 1) throw new Error(`--session-entry takes KEY=VALUE (a session.* configuration key without the prefix), not ${entry}`);
    return [entry.slice(0, at), entry.slice(at + 1)];
  }),
);
const tuning = { memPattern: flags['no-mem-pattern'] ? false : undefined, sessionEntries };
const model = await EngineModel.open(dir, { ep: flags.ep as ExecutionProviderChoice, tuning });
if (flags['no-mem-pattern'] || Object.keys(sessionEntries).length > 0) process.stdout.write(`onnxruntime settings: ${JSON.stringify(tuning)}\n`);
const tokenizer = await GenerationTokenizer.load(dir);
const stopIds = flags['no-stop'] ? [] : [...new Set([...tokenizer.stopIds, ...model.config.eos_token_ids])];
const prompts = await Promise.all(promptTexts().map(async (text) => tokenizer.loaded.encode(await renderChat(tokenizer.loaded, [{ role: 'user', content: text }]))));
const weightBytes = targetWeightBytes(dir);

interface Row {
  method: string;
  engine: string;
  tokensPerSecond: number;
  tau: number;
  kibPerToken: number;
  tokens: number;
  /** Null when vanilla was not run first in this invocation (nothing to compare with). */
  equalsVanilla: boolean | null;
  /** Greedy: prompts whose tokens differ from vanilla on the first engine (null: vanilla not run), and from this method on the first engine. */
  promptsDifferingFromVanilla: number | null;
  promptsDifferingFromFirstEngine?: number;
  /** Time of one target step (vanilla) or one speculative cycle: τ ÷ tokens/s. */
  msPerCycle: number;
  rooflineTokensPerSecond?: number;
  rooflineFraction?: number;
}

process.stdout.write(
  `model ${dir}, ep ${model.sessions.ep}, ${prompts.length} prompts × ${repeats} repeats, ≤ ${maxNewTokens} new tokens${flags['no-stop'] ? ' (stop ids ignored)' : ''}; ` +
    `target weights ${(weightBytes / 1e6).toFixed(1)} MB per forward${bandwidth ? `, bandwidth ${(bandwidth / 1e9).toFixed(0)} GB/s` : ''}\n`,
);
const reference = new Map<number, number[]>();
/** Per method: each prompt's tokens on the first engine listed, the engine the others are compared with. */
const firstEngineTokens = new Map<string, Map<number, number[]>>();
const engineList = flags.engines.split(',');
/**
 * An engine of the list: an EngineChoice, optionally with vanilla's decode attention ("fused+gqa") and
 * reserved cache rows ("host+reserved", "fused+reserved", "fused+gqa+reserved") or exact ones ("fused+exact").
 */
const engineSettings = (spec: string): Pick<MethodSettings, 'engine' | 'decodeAttention' | 'reserveRows'> => {
  const [engine, ...options] = spec.split('+');
  if (options.some((o) => o !== 'gqa' && o !== 'reserved' && o !== 'exact') || (options.includes('reserved') && options.includes('exact'))) {
    throw new Error(`--engines: ${spec} is not an engine (host, fused, auto, host+gqa, fused+gqa, host+reserved, fused+reserved, fused+gqa+reserved, host+exact, fused+exact)`);
  }
  const reserveRows = options.includes('reserved') ? true : options.includes('exact') ? false : undefined;
  return { engine: engine as EngineChoice, decodeAttention: options.includes('gqa') ? 'gqa' : undefined, reserveRows };
};
const rows: Row[] = [];
for (const spec of flags.methods.split(',')) {
  const [method, size] = spec.split(':');
  for (const engine of engineList) {
    const settings: MethodSettings = { method: method as MethodSettings['method'], ...engineSettings(engine), tree, strictDevice: flags.strict, allowGqaOnCuda: flags['allow-gqa-on-cuda'] };
    if ((settings.decodeAttention === 'gqa' || settings.reserveRows) && method !== 'vanilla') continue;
    if (method === 'fr-spec') settings.vocabSubset = loadVocabMap(size, { dir, vocabSize: model.config.vocab_size, tokenizerVocabSize: tokenizer.loaded.info.vocabSize }).ids;
    const generator = await Generator.create(model, settings);
    try {
      await generator.generate(prompts[0], { maxNewTokens: 32, stopIds, sampling }); // warm-up (kernels, shapes)
      let tokens = 0;
      let seconds = 0;
      let bytes = 0;
      let cycles = 0;
      let inCycles = 0;
      let equal = true;
      const differing = new Set<number>();
      const differingFromFirst = new Set<number>();
      // Compared with the first engine listed that runs the same decode attention and cache rows (host+gqa for
      // fused+gqa, host+reserved for fused+reserved).
      const variant = (e: string) => {
        const { decodeAttention = 'graph', reserveRows } = engineSettings(e);
        return `${decodeAttention}|${reserveRows ?? reservesRowsByDefault(model.sessions.ep, decodeAttention)}`;
      };
      const firstEngine = engineList.find((e) => variant(e) === variant(engine))!;
      const key = `${spec}|${variant(engine)}`;
      if (!firstEngineTokens.has(key)) firstEngineTokens.set(key, new Map());
      const firstTokens = firstEngineTokens.get(key)!;
      for (let r = 0; r < repeats; r++) {
        for (const [i, prompt] of prompts.entries()) {
          const result = await generator.generate(prompt, { maxNewTokens, stopIds, sampling, seed: r * prompts.length + i });
          if (sampling) equal = false; // samples differ by engine and seed; only their distribution is the target's
          else {
            if (method === 'vanilla' && engine === engineList[0] && r === 0) reference.set(i, result.tokens);
            else if (reference.has(i) && JSON.stringify(reference.get(i)) !== JSON.stringify(result.tokens)) differing.add(i);
            if (engine === firstEngine && r === 0) firstTokens.set(i, result.tokens);
            else if (JSON.stringify(firstTokens.get(i)) !== JSON.stringify(result.tokens)) differingFromFirst.add(i);
          }
          tokens += result.stats.newTokens;
          seconds += result.stats.seconds;
          bytes += result.stats.bytesMoved;
          cycles += result.stats.cycles;
          inCycles += result.stats.meanAcceptanceLength * result.stats.cycles;
        }
      }
      const tau = cycles > 0 ? inCycles / cycles : 1;
      const tokensPerSecond = tokens / seconds;
      if (differing.size > 0) equal = false;
      const row: Row = {
        method: spec,
        engine: [generator.engine, ...(settings.decodeAttention ? [settings.decodeAttention] : []), ...(settings.reserveRows === true ? ['reserved'] : settings.reserveRows === false ? ['exact'] : [])].join('+'),
        tokensPerSecond,
        tau,
        msPerCycle: (1000 * tau) / tokensPerSecond,
        kibPerToken: bytes / tokens / 1024,
        tokens,
        equalsVanilla: reference.size === 0 ? null : equal,
        promptsDifferingFromVanilla: reference.size === 0 ? null : differing.size,
        promptsDifferingFromFirstEngine: engine === firstEngine ? undefined : differingFromFirst.size,
      };
      const versusFirst = sampling || row.promptsDifferingFromFirstEngine === undefined ? '' : row.promptsDifferingFromFirstEngine === 0 ? `, equal to ${firstEngine} ${spec}` : `, ${row.promptsDifferingFromFirstEngine}/${prompts.length} prompts differ from ${firstEngine} ${spec}`;
      if (bandwidth) {
        row.rooflineTokensPerSecond = (tau * bandwidth) / weightBytes;
        row.rooflineFraction = row.tokensPerSecond / row.rooflineTokensPerSecond;
      }
      rows.push(row);
      process.stdout.write(
        `${spec.padEnd(14)} ${row.engine.padEnd(18)} ${row.tokensPerSecond.toFixed(1).padStart(8)} tok/s  τ ${tau.toFixed(2)}  ${row.msPerCycle.toFixed(2).padStart(6)} ms/${method === 'vanilla' ? 'step ' : 'cycle'}  ${row.kibPerToken.toFixed(1).padStart(8)} KiB/token` +
          `${row.rooflineFraction !== undefined ? `  roofline ${row.rooflineTokensPerSecond!.toFixed(0)} tok/s → ${(100 * row.rooflineFraction).toFixed(1)}%` : ''}  ${sampling ? `sampled (T ${sampling.temperature}, top-p ${sampling.topP})` : reference.size === 0 ? 'vanilla not run' : equal ? 'tokens equal vanilla' : `TOKENS DIFFER FROM VANILLA (${differing.size}/${prompts.length} prompts)`}${versusFirst}\n`,
      );
    } finally {
      await generator.release();
    }
  }
}
const find = (method: string, engine: string) => rows.find((r) => r.method === method && r.engine === engine);
for (const [engine, vanillaEngine] of [['host', 'host'], ['fused', 'fused'], ['fused', 'fused+gqa'], ['host', 'host+reserved'], ['fused', 'fused+reserved'], ['fused', 'fused+gqa+reserved'], ['host', 'host+exact'], ['fused', 'fused+exact']]) {
  const vanilla = find('vanilla', vanillaEngine);
  const eagle = find('eagle2', engine);
  if (vanillaEngine !== engine && !vanilla) continue;
  for (const row of rows.filter((r) => r.engine === engine && r.method !== 'vanilla')) {
    const parts = [`${row.method} ${engine}${vanillaEngine === engine ? '' : ` (vs vanilla ${vanillaEngine})`}:`];
    if (vanilla) parts.push(`${(row.tokensPerSecond / vanilla.tokensPerSecond).toFixed(2)}× vanilla`);
    if (eagle && row !== eagle) parts.push(`${(row.tokensPerSecond / eagle.tokensPerSecond).toFixed(2)}× eagle2, τ ${((100 * row.tau) / eagle.tau).toFixed(1)}% of eagle2's`);
    if (parts.length > 1) process.stdout.write(`${parts.join(' ')}\n`);
  }
}
if (flags.json) writeFileSync(flags.json, `${JSON.stringify({ model: dir, ep: model.sessions.ep, prompts: prompts.length, repeats, maxNewTokens, weightBytes, bandwidth, rows }, null, 2)}\n`);
await model.release();
