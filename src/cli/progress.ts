import cliProgress from 'cli-progress';
import type { CountProgress } from '../vocab/parallel-count.js';

/** A progress bar on stderr: documents, tokens, MB/s of text and an ETA from the bytes of the files read. */
export function createProgress(totalFileBytes: Record<string, number>) {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{stage} [{bar}] {percentage}% | {docs} docs | {tokens} tokens | {mbps} MB/s | ETA {eta_formatted}',
      barsize: 24,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = Date.now();
  let running = false;
  let currentStage = '';
  let total = 1;
  return {
    update(stage: string, p: CountProgress) {
      if (!running || stage !== currentStage) {
        if (running) bar.stop();
        total = Math.max(1, totalFileBytes[stage] ?? 0);
        started = Date.now();
        bar.start(total, 0, { stage, docs: 0, tokens: 0, mbps: '0.00' });
        running = true;
        currentStage = stage;
      }
      const seconds = Math.max(1e-3, (Date.now() - started) / 1000);
      bar.update(Math.min(p.fileBytesRead, total), {
        stage,
        docs: p.documents.toLocaleString('en-US'),
        tokens: p.tokens.toLocaleString('en-US'),
        mbps: (p.textBytes / 1e6 / seconds).toFixed(2),
      });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
