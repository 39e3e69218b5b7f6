// Throughput of build-vocab's counting: MB/s of UTF-8 text and tokens/s, per worker count and route.
//   npx tsx bench/build-vocab.ts [--corpus FILE...] [--tokenizer llama3] [--workers 1,2] [--routes fast,reference] [--repeat 1]
// Default corpus: ../shared/corpora/slimpajama-mix/validation-00000.jsonl.zst (4.86 MB of text, 528 documents).
// "wall" includes worker start-up (tokenizer loading, ~1-2 s) as a user of the CLI sees it; "steady" excludes it,
// like the Python reference timings (bench/gpu/reference_tokenize.py), which do not time tokenizer loading.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveCorpus } from '../src/corpus/sources.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { countCorpus } from '../src/vocab/parallel-count.js';

const { values } = parseArgs({
  options: {
    corpus: { type: 'string', multiple: true },
    tokenizer: { type: 'string', default: 'llama3' },
    workers: { type: 'string', default: `1,${os.availableParallelism()}` },
    routes: { type: 'string', default: 'fast' },
    repeat: { type: 'string', default: '1' },
  },
});
const repoRoot = path.resolve(import.meta.dirname, '..');
const corpus = values.corpus ?? [path.resolve(repoRoot, '../shared/corpora/slimpajama-mix/validation-00000.jsonl.zst')];
const files = await resolveCorpus(corpus);
const tokenizer = await loadTokenizer(values.tokenizer!);
const workerCounts = [...new Set(values.workers!.split(',').map(Number))];
const routes = values.routes!.split(',') as ('fast' | 'reference')[];

console.log(`corpus: ${files.map((f) => path.basename(f.path)).join(', ')}; tokenizer ${tokenizer.info.name}; ${os.cpus()[0]?.model} x${os.availableParallelism()}`);
console.log('route      workers  startup  seconds  wall MB/s  steady MB/s  steady MB/s/worker  steady tokens/s     tokens');
let reference: Float64Array | undefined;
for (const route of routes) {
  for (const workers of workerCounts) {
    for (let r = 0; r < Number(values.repeat); r++) {
      const res = await countCorpus({ tokenizer: values.tokenizer!, vocabSize: tokenizer.info.vocabSize, files, workers, route });
      const steadySeconds = res.seconds - res.startupSeconds;
      const steady = res.textBytes / 1e6 / steadySeconds;
      console.log(
        `${res.route.padEnd(10)} ${String(workers).padStart(7)} ${res.startupSeconds.toFixed(2).padStart(8)} ${res.seconds.toFixed(2).padStart(8)} ` +
          `${(res.textBytes / 1e6 / res.seconds).toFixed(2).padStart(10)} ${steady.toFixed(2).padStart(12)} ${(steady / workers).toFixed(2).padStart(19)} ` +
          `${Math.round(res.tokens / steadySeconds).toString().padStart(16)} ${String(res.tokens).padStart(10)}`,
      );
      if (reference && reference.some((c, id) => c !== res.counts[id])) throw new Error('counts differ between runs');
      reference ??= res.counts;
    }
  }
}
console.log('counts identical across all runs');
