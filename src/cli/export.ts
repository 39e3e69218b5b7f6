import { Command, Option } from 'commander';
import { exportModel } from '../model/export.js';
import type { FloatDType } from '../model/onnx/dtypes.js';
import { formatBytes } from '../util/format.js';

interface ExportFlags {
  target: string;
  eagle?: string;
  draft?: string;
  out: string;
  dtype: 'fp16' | 'fp32';
  weightDtype?: 'fp16' | 'fp32';
  quantizeVocab: 'none' | 'int8';
  ops: 'standard' | 'fused';
  vocabMaps?: string;
  force?: boolean;
  quiet?: boolean;
}

const DTYPES: Record<ExportFlags['dtype'], FloatDType> = { fp16: 'float16', fp32: 'float32' };

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export Hugging Face checkpoints (Llama / Qwen2, EAGLE-1/2 heads) to an fr-spec model folder (docs/model-contract.md)')
    .requiredOption('--target <hf-dir>', 'the target model: a folder with config.json and *.safetensors')
    .option('--eagle <hf-dir>', 'an EAGLE-1/2 draft head trained for the target')
    .option('--draft <hf-dir>', 'a small causal LM sharing the target\'s tokenizer (for sps / ouroboros)')
    .requiredOption('--out <model-dir>', 'the model folder to create')
    .addOption(new Option('--dtype <dtype>', 'float type the graphs compute in: weights, hidden states and KV cache (fp16 for CUDA, fp32 for CPUs)').choices(['fp16', 'fp32']).default('fp16'))
    .addOption(new Option('--weight-dtype <dtype>', 'float type the weights are stored in (default: --dtype); fp16 under --dtype fp32 halves the files, converted when loaded').choices(['fp16', 'fp32']))
    .addOption(new Option('--quantize-vocab <mode>', 'store embedding tables and LM heads [V, d] as int8 rows with one scale per row').choices(['none', 'int8']).default('none'))
    .addOption(
      new Option('--ops <ops>', 'operators of the decoder graphs: fused RMSNorm / RoPE / attention nodes (ONNX opset 23 and onnxruntime contrib ops; ≈ 2.5× fewer nodes per layer, faster on GPUs), or standard opset-21 ops that any ONNX runtime has')
        .choices(['standard', 'fused'])
        .default('fused'),
    )
    .option('--vocab-maps <dir>', 'a build-vocab output folder to ship in the model folder\'s vocab-maps/')
    .option('--force', 'replace the output folder if it exists')
    .option('--quiet', 'print nothing on success')
    .action(async (flags: ExportFlags) => runExport(flags));
}

async function runExport(flags: ExportFlags): Promise<void> {
  const started = performance.now();
  const log = (line: string) => {
    if (!flags.quiet) process.stderr.write(`${line}\n`);
  };
  const result = await exportModel({
    target: flags.target,
    eagle: flags.eagle,
    draft: flags.draft,
    out: flags.out,
    dtype: DTYPES[flags.dtype],
    weightDtype: flags.weightDtype && DTYPES[flags.weightDtype],
    quantizeVocab: flags.quantizeVocab,
    ops: flags.ops,
    vocabMaps: flags.vocabMaps,
    force: flags.force,
    onProgress: log,
  });
  if (flags.quiet) return;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const lines = result.files.map((file) => `  ${file.name.padEnd(28)} ${formatBytes(file.bytes).padStart(10)}`);
  const { config } = result;
  const total = formatBytes(result.files.reduce((sum, file) => sum + file.bytes, 0));
  const storage = config.weights ? `, weights ${config.weights.dtype}, vocabulary tables ${config.weights.vocab_tables}` : '';
  process.stdout.write(`wrote ${result.outDir} in ${seconds} s (contract v${config.contract_version}, ${config.dtype}${storage}, ${config.ops ?? 'standard'} ops; ${total})\n${lines.join('\n')}\n`);
}

