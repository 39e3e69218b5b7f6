/**
 * Tokens/s of greedy vanilla decoding: the host engine (one target run per token, the KV cache fed
 * from the host every step) against the fused device loop (src/engine/fused), whole generation in one
 * Loop run and in chunks, on the same prompts. Also checks that every run produced the host's tokens.
 *
 *   node --import tsx test/gpu/time-fused.ts [model-dir] [--ep cuda|cpu] [--max-new-tokens 256]
 *        [--repeats 3] [--chunks 16,64] [--strict] [--no-stop]
 *
 * model-dir defaults to models/demo. --strict creates the loop session with
 * session.disable_cpu_ep_fallback = '1' (fails if a node of the Loop has no CUDA kernel).
 * --no-stop ignores EOS, so every run decodes exactly --max-new-tokens tokens.
 * onnxruntime-node comes from $FR_SPEC_ORT_DIR when set (the offline GPU kit), else node_modules.
 */
import { parseArgs } from 'node:util';
import { Generator, type GenerationResult } from '../../src/engine/engine.js';
import { FusedVanilla } from '../../src/engine/fused/fused-vanilla.js';
import { EngineModel } from '../../src/engine/model.js';
import { DEMO_MODEL_DIR } from '../../src/engine/paths.js';
import { GenerationTokenizer } from '../../src/engine/text.js';
import type { ExecutionProviderChoice } from '../../src/model/ort-runtime.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ep: { type: 'string', default: 'cuda' },
    'max-new-tokens': { type: 'string', default: '256' },
    repeats: { type: 'string', default: '3' },
    chunks: { type: 'string', default: '16,64' },
    strict: { type: 'boolean', default: false },
    'no-stop': { type: 'boolean', default: false },
  },
});
const dir = positionals[0] ?? DEMO_MODEL_DIR;
const maxNewTokens = Number(flags['max-new-tokens']);
const repeats = Number(flags.repeats);
const chunks = flags.chunks.split(',').filter((s) => s !== '').map(Number);

const PROMPTS = [
  'The capital of France is',
  'Write a short story about a robot who learns to paint.',
  'Explain how a hash table works, with an example in Python.',
  'List five facts about the Moon.',
];

const model = await EngineModel.open(dir, { ep: flags.ep as ExecutionProviderChoice });
const tokenizer = await GenerationTokenizer.load(dir);
const generator = await Generator.create(model, { method: 'vanilla' });
const fused = await FusedVanilla.create(model, { strictDevice: flags.strict });
const stopIds = flags['no-stop'] ? [] : [...new Set([...tokenizer.stopIds, ...model.config.eos_token_ids])];
const prompts = await Promise.all(PROMPTS.map((text) => tokenizer.encodePrompt(text, { chat: false })));

type Variant = { name: string; run: (prompt: number[]) => Promise<GenerationResult> };
const variants: Variant[] = [
  { name: 'host', run: (prompt) => generator.generate(prompt, { maxNewTokens, stopIds }) },
  { name: 'fused (one run)', run: (prompt) => fused.generate(prompt, { maxNewTokens, stopIds }) },
  ...chunks.map((chunk) => ({ name: `fused (chunks of ${chunk})`, run: (prompt: number[]) => fused.generate(prompt, { maxNewTokens, stopIds, chunk }) })),
];

process.stdout.write(`model ${dir}, ep ${model.sessions.ep}, ${maxNewTokens} new tokens max, ${prompts.length} prompts × ${repeats} repeats\n`);
// Warm-up: one run of every variant (session shape caches, CUDA kernels).
for (const v of variants) await v.run(prompts[0]);

const reference = new Map<number, number[]>();
for (const v of variants) {
  let tokens = 0;
  let seconds = 0;
  let bytes = 0;
  const rates: number[] = [];
  let mismatches = 0;
  for (let r = 0; r < repeats; r++) {
    for (const [i, prompt] of prompts.entries()) {
      const result = await v.run(prompt);
      if (!reference.has(i)) reference.set(i, result.tokens);
      else if (JSON.stringify(reference.get(i)) !== JSON.stringify(result.tokens)) mismatches++;
      tokens += result.stats.newTokens;
      seconds += result.stats.seconds;
      bytes += result.stats.bytesMoved;
      rates.push(result.stats.tokensPerSecond);
    }
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  process.stdout.write(
    `${v.name.padEnd(22)} ${(tokens / seconds).toFixed(1).padStart(8)} tokens/s overall, median ${median.toFixed(1).padStart(8)}; ` +
      `${(bytes / tokens / 1024).toFixed(1)} KiB moved per token; ${tokens} tokens${mismatches ? `; ${mismatches} RUNS DIFFER FROM HOST` : '; tokens equal host'}\n`,
  );
}
await fused.release();
await model.release();
