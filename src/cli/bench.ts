/**
 * fr-spec bench: tokens/s, acceptance length τ and speedup of decoding methods over prompt sets,
 * the way Spec-Bench reports them; `fr-spec bench report` re-renders and compares saved runs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runBench, type BenchRequest } from '../bench/bench.js';
import { NAMED_DATASETS } from '../bench/dataset/load.js';
import { DEFAULT_PROMPTS, DEFAULT_WARMUP, defaultOutDir, DEMO_MODEL_DIR, EMBEDDED_RUN } from '../bench/defaults.js';
import { openEngineBackend } from '../bench/engine-adapter.js';
import { ENGINES, type EngineChoice } from '../engine/engine.js';
import { DECODE_ATTENTIONS, type DecodeAttention } from '../model/fused/gqa-decode.js';
import { createBenchProgress } from '../bench/progress-bar.js';
import { compareLegend, compareTable, runLabels } from '../bench/report/compare.js';
import { REPORT_FILES, summarizeSaved, terminalReport, writeReports } from '../bench/report/outputs.js';
import { renderMarkdown, renderText } from '../bench/report/table.js';
import { writeFileAtomic } from '../bench/atomic-write.js';
import { readSavedResults } from '../bench/store/result-store.js';
import type { OpenBackend } from '../bench/types.js';
import { UserError } from '../util/errors.js';
import { parsePositiveInt } from './parse.js';

interface BenchFlags {
  model?: string;
  dataset?: string;
  data?: string;
  methods?: string;
  vocabMaps?: string;
  limit?: number;
  perCategory?: number;
  maxNewTokens?: number;
  temperature: number;
  seed: number;
  runs: number;
  warmup?: number;
  ep?: BenchRequest['ep'];
  engine: EngineChoice;
  decodeAttention: DecodeAttention;
  reserveRows?: boolean;
  out?: string;
  system?: string;
  promptStyle?: 'chat' | 'plain';
  fewshot?: string;
  shots: number;
  quiet?: boolean;
}

interface ReportFlags {
  markdown?: string;
}

/** What the command talks to; tests pass fakes. */
export interface BenchCliDependencies {
  openBackend: OpenBackend;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Whether to draw the progress bar (default: stderr is a terminal). */
  showProgress: boolean;
  demoModelDir: string;
  now: () => Date;
  resolveDevice?: (ep: BenchRequest['ep']) => BenchRequest['ep'];
}

const SIGINT_EXIT = 130;

function parseNumber(option: string, check: (n: number) => boolean, expectation: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new InvalidArgumentError(`${option} expects ${expectation}, got "${value}"`);
    return n;
  };
}

const wholeAtLeastZero = (option: string) => parseNumber(option, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0');

export function registerBench(program: Command, overrides: Partial<BenchCliDependencies> = {}): void {
  const deps: BenchCliDependencies = {
    openBackend: openEngineBackend,
    stdout: process.stdout,
    stderr: process.stderr,
    showProgress: process.stderr.isTTY === true,
    demoModelDir: DEMO_MODEL_DIR,
    now: () => new Date(),
    ...overrides,
  };
  const bench = program
    .command('bench')
    .description('measure tokens/s, acceptance length τ and speedup of decoding methods over a prompt set (Spec-Bench style); without options, the demo models on the project\'s prompts')
    .option('--model <dir>', 'model folder made by fr-spec export (default: the demo models in models/demo, on the CPU)')
    .option('--dataset <name|file>', `${NAMED_DATASETS.join(', ')} (with --data), or a .jsonl file (default: bench/prompts/default.jsonl)`)
    .option('--data <path>', 'the file of a named dataset (the project ships no third-party benchmark data)')
    .option('--methods <list>', 'comma-separated: vanilla, eagle2, fr-spec:<size>, sps, ouroboros (default: every method the model folder can run; vanilla, eagle2 and one fr-spec size for the demo models on the project prompts)')
    .option('--vocab-maps <dir>', 'a build-vocab output folder with more freq_{r}.json subsets for fr-spec:<r>')
    .option('--limit <n>', 'only the first n questions', parsePositiveInt('--limit'))
    .option('--per-category <n>', 'only the first n questions of each category, asked one category after the other in turn (so a run stopped early covers all of them); before --limit', parsePositiveInt('--per-category'))
    .option('--max-new-tokens <n>', 'new tokens per turn at most (default: the protocol\'s, 1024 for Spec-Bench and MT-bench, 512 for HumanEval and GSM8K; 64 for the project\'s prompts)', parsePositiveInt('--max-new-tokens'))
    .option('--temperature <t>', 'sampling temperature; 0 = greedy (outputs are then checked against vanilla)', parseNumber('--temperature', (n) => n >= 0, 'a number ≥ 0'), 0)
    .option('--seed <s>', 'sampling seed of run 1 (run r uses seed + r - 1)', wholeAtLeastZero('--seed'), 0)
    .option('--runs <r>', 'measure every question r times and report the median per question', parsePositiveInt('--runs'), 1)
    .option('--warmup <w>', `untimed generations per method before measuring (default ${DEFAULT_WARMUP}; ${EMBEDDED_RUN.warmup} for the project's prompts)`, wholeAtLeastZero('--warmup'))
    .addOption(new Option('--ep <provider>', 'execution provider (default: auto, or cpu for the demo models)').choices(['cuda', 'cpu', 'auto']))
    .addOption(new Option('--engine <kind>', 'host: graph runs driven from TypeScript, KV caches on the host; fused: vanilla, eagle2, fr-spec and sps inside one ONNX Loop, caches on the device (ouroboros stays on the host); auto: fused on CUDA').choices([...ENGINES]).default('auto'))
    .addOption(new Option('--decode-attention <kind>', 'vanilla\'s one-token decode steps: graph (the exported graph\'s attention nodes) or gqa (one GroupQueryAttention node per layer; --ops fused models; on CUDA only with ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 set), see fr-spec generate').choices([...DECODE_ATTENTIONS]).default('graph'))
    .option('--reserve-rows', 'vanilla, either engine: KV caches padded to the generation\'s length, each step\'s row written in place (same shapes every step; the default on CUDA; on fp16 tokens may differ from decoding without it), see fr-spec generate')
    .option('--no-reserve-rows', 'vanilla: caches at their exact length (the default on the CPU)')
    .addOption(new Option('--prompt-style <style>', 'chat: the model\'s chat template; plain: the text as it is (default: chat, plain few-shot for GSM8K)').choices(['chat', 'plain']))
    .option('--system <text>', 'system prompt for chat prompts (default: none; HumanEval: FR-Spec\'s instruction)')
    .option('--fewshot <file>', 'GSM8K: take the exemplars from this file instead of the first items of --data')
    .option('--shots <n>', 'GSM8K: number of few-shot exemplars', parsePositiveInt('--shots'), 8)
    .option('--out <dir>', 'output folder; rerunning with the same one resumes it (default: a new bench-results/<model>-<dataset>-<time>)')
    .option('--quiet', 'no progress on stderr')
    .action(async (flags: BenchFlags) => runBenchCommand(flags, deps));

  bench
    .command('report')
    .description('re-render the tables of saved bench output folders; with several, compare them side by side')
    .argument('<dir...>', 'output folders of fr-spec bench')
    .option('--markdown <file>', 'also write the comparison as Markdown')
    .action(async (dirs: string[], flags: ReportFlags) => runReportCommand(dirs, flags, deps));
}

async function runBenchCommand(flags: BenchFlags, deps: BenchCliDependencies): Promise<void> {
  const usingDemo = flags.model === undefined;
  const modelDir = flags.model ?? deps.demoModelDir;
  if (usingDemo && !existsSync(modelDir)) {
    throw new UserError(
      `the demo models are not there yet (${path.relative(process.cwd(), modelDir) || modelDir}): they come from the recipe in training/; ` +
        'pass --model <dir>, a folder made by fr-spec export',
    );
  }
  const embeddedPrompts = flags.dataset === undefined;
  const dataset = flags.dataset ?? DEFAULT_PROMPTS;
  const out = flags.out ?? defaultOutDir(modelDir, dataset, deps.now());
  const request: BenchRequest = {
    modelDir,
    dataset: { dataset, data: flags.data, fewshot: flags.fewshot, shots: flags.shots, limit: flags.limit, perCategory: flags.perCategory },
    methods: flags.methods,
    quick: usingDemo && embeddedPrompts,
    vocabMaps: flags.vocabMaps,
    maxNewTokens: flags.maxNewTokens ?? (embeddedPrompts ? EMBEDDED_RUN.maxNewTokens : undefined),
    temperature: flags.temperature,
    seed: flags.seed,
    runs: flags.runs,
    warmup: flags.warmup ?? (embeddedPrompts ? EMBEDDED_RUN.warmup : DEFAULT_WARMUP),
    ep: flags.ep ?? (usingDemo ? EMBEDDED_RUN.ep : 'auto'),
    engine: flags.engine,
    decodeAttention: flags.decodeAttention,
    reserveRows: flags.reserveRows,
    out,
    system: flags.system,
    promptStyle: flags.promptStyle,
  };
  const progress = deps.showProgress && !flags.quiet ? createBenchProgress() : undefined;
  const abort = new AbortController();
  const onSigint = () => {
    deps.stderr.write('\nstopping after the current generation (Ctrl-C again to quit at once)\n');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  let outcome: Awaited<ReturnType<typeof runBench>>;
  try {
    const openBackend: OpenBackend = (backendRequest) => deps.openBackend({ ...backendRequest, onWarning: (message) => deps.stderr.write(`fr-spec: warning: ${message}\n`) });
    outcome = await runBench(request, { openBackend, events: progress, signal: abort.signal, now: deps.now, resolveDevice: deps.resolveDevice });
  } finally {
    progress?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  deps.stdout.write(terminalReport(outcome.saved.meta, outcome.summary));
  const shown = displayPath(outcome.saved.dir);
  if (!flags.quiet) {
    const resumed = outcome.resumed > 0 ? `; ${outcome.resumed} already there` : '';
    deps.stderr.write(`measured ${outcome.measured} (method, question, run) pair(s)${resumed}; wrote ${shown}/ (${Object.values(REPORT_FILES).join(', ')})\n`);
  }
  if (outcome.interrupted) throw new UserError(`interrupted; the finished pairs are saved: rerun with --out ${shown} to go on`, SIGINT_EXIT);
}

/** Relative to the working directory when inside it, else absolute. */
function displayPath(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative === '' ? '.' : relative.startsWith('..') || path.isAbsolute(relative) ? dir : relative;
}

async function runReportCommand(dirs: string[], flags: ReportFlags, deps: BenchCliDependencies): Promise<void> {
  const labels = runLabels(dirs);
  const runs = dirs.map((dir, i) => {
    const saved = readSavedResults(dir);
    return { label: labels[i], saved, summary: summarizeSaved(saved) };
  });
  const legend = compareLegend(runs);
  const table = compareTable(runs);
  if (runs.length === 1) {
    writeReports(runs[0].saved);
    deps.stdout.write(terminalReport(runs[0].saved.meta, runs[0].summary));
  } else {
    deps.stdout.write(`${legend.join('\n')}\n\n${renderText(table)}`);
  }
  if (flags.markdown) writeFileAtomic(flags.markdown, `# fr-spec bench comparison\n\n${legend.map((l) => `- ${l}`).join('\n')}\n\n${renderMarkdown(table)}`);
}
