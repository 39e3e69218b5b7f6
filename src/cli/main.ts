#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { UserError } from '../util/errors.js';
import { registerBuildVocab } from './build-vocab.js';
import { registerExport } from './export.js';
import { registerGenerate } from './generate.js';
import { registerBench } from './bench.js';

export function createProgram(): Command {
  const program = new Command();
  program
    .name('fr-spec')
    .description('Frequency-ranked speculative sampling (FR-Spec) for large-vocabulary LLMs')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  registerBuildVocab(program);
  registerExport(program);
  registerGenerate(program);
  registerBench(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof UserError) {
      process.stderr.write(`fr-spec: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

const isEntry = process.argv[1] !== undefined && /(fr-spec|main\.[jt]s)$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`fr-spec: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
