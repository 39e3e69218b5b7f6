/**
 * Progress of a bench run on stderr: loading and warm-up as lines, then a bar over the pending
 * (method, question, run) pairs with the current method and question and that method's running
 * tokens/s (mean of the per-question speeds measured so far in this invocation).
 */
import cliProgress from 'cli-progress';
import { mean, sum } from './stats.js';
import type { RunnerEvents } from './runner.js';

export interface BenchProgress extends RunnerEvents {
  stop(): void;
}

export function createBenchProgress(stream: NodeJS.WriteStream = process.stderr): BenchProgress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: '{method} | question {question} run {run} [{bar}] {value}/{total} | {tps} tok/s | ETA {eta_formatted}',
      barsize: 20,
      hideCursor: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const speeds = new Map<string, number[]>();
  let started = false;
  const runningSpeed = (method: string) => {
    const measured = speeds.get(method);
    return measured && measured.length > 0 ? mean(measured).toFixed(1) : '–';
  };
  return {
    onLoad: (method) => stream.write(`loading ${method}…\n`),
    onWarmup: (method, generation, of) => stream.write(`warm-up ${method} ${generation}/${of}\n`),
    onPairStart(event) {
      const payload = { method: event.method.label, question: `${event.questionIndex + 1} (${event.question.id})`, run: event.run, tps: runningSpeed(event.method.label) };
      if (!started) bar.start(event.total, event.done, payload);
      else bar.update(event.done, payload);
      started = true;
    },
    onPairDone(event, record) {
      const speed = sum(record.turns.map((t) => t.newTokens)) / sum(record.turns.map((t) => t.wallSeconds));
      const list = speeds.get(record.method) ?? [];
      list.push(speed);
      speeds.set(record.method, list);
      bar.update(event.done, { tps: runningSpeed(record.method) });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
