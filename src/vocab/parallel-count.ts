import type { Worker } from 'node:worker_threads';
import { readCorpus } from '../corpus/read.js';
import type { CorpusDocument, CorpusFile, ReadOptions } from '../corpus/types.js';
import { UserError } from '../util/errors.js';
import { startTsWorker } from '../util/workers.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './count-protocol.js';

export interface CountOptions {
  /** Tokenizer preset name or folder (each worker loads its own copy). */
  tokenizer: string;
  vocabSize: number;
  files: CorpusFile[];
  read?: Omit<ReadOptions, 'onBytes'>;
  /** Number of worker threads (≥ 1). */
  workers: number;
  route?: WorkerSetup['route'];
  /** Why the caller's 'auto' decision fell back to the reference route (reported in the result). */
  routeReason?: string;
  /** Add one BOS occurrence per document (what `tokenizer.encode` with special tokens does for Llama-3). */
  bosId?: number | null;
  /** Stop after this many documents (exact). */
  maxDocs?: number;
  /** Stop reading once this many tokens are counted (documents already being tokenized still finish). */
  maxTokens?: number;
  onProgress?: (progress: CountProgress) => void;
  /** Aborts between documents; the caller reports the cancellation. */
  signal?: AbortSignal;
}

export interface CountProgress {
  documents: number;
  tokens: number;
  textBytes: number;
  fileBytesRead: number;
}

export interface SetTally {
  documents: number;
  tokens: number;
  textBytes: number;
}

export interface CountResult {
  counts: Float64Array;
  documents: number;
  tokens: number;
  textBytes: number;
  perSet: Map<string, SetTally>;
  route: 'fast' | 'reference';
  routeReason?: string;
  /** Wall time, worker start-up (tokenizer loading) included. */
  seconds: number;
  /** Time until every worker had loaded its tokenizer. */
  startupSeconds: number;
}

const BATCH_CHARS = 256 * 1024;
const BATCH_DOCS = 256;
const IN_FLIGHT_PER_WORKER = 3;

interface PendingBatch {
  sets: string[];
  textBytes: number[];
}

/** One worker thread and the batches it has not answered yet. */
class CountWorker {
  inFlight = 0;
  private terminating = false;
  private readonly worker: Worker;
  private readonly readyPromise: Promise<WorkerReply & { type: 'ready' }>;
  private countsWaiter?: (counts: Float64Array) => void;

  constructor(setup: WorkerSetup, onBatchDone: (seq: number, tokens: number[]) => void, onError: (err: Error) => void) {
    this.worker = startTsWorker(new URL('./count-worker.ts', import.meta.url), { ...setup });
    let rejectReady: (err: Error) => void = () => {};
    this.readyPromise = new Promise((resolve, reject) => {
      rejectReady = reject;
      this.worker.on('message', (reply: WorkerReply) => {
        switch (reply.type) {
          case 'ready':
            resolve(reply);
            break;
          case 'batch-done':
            this.inFlight--;
            onBatchDone(reply.seq, reply.tokens);
            break;
          case 'counts':
            this.countsWaiter?.(reply.counts);
            break;
          case 'error':
            rejectReady(new UserError(reply.message));
            onError(new UserError(reply.message));
            break;
        }
      });
    });
    const onCrash = (err: Error) => {
      rejectReady(err);
      onError(err);
    };
    this.worker.on('error', onCrash);
    this.worker.on('exit', (code) => {
      if (code !== 0 && !this.terminating) onCrash(new Error(`counting worker exited with code ${code}`));
    });
  }

  ready() {
    return this.readyPromise;
  }

  send(request: WorkerRequest): void {
    if (request.type === 'batch') this.inFlight++;
    this.worker.postMessage(request);
  }

  finish(): Promise<Float64Array> {
    return new Promise((resolve) => {
      this.countsWaiter = resolve;
      this.send({ type: 'finish' });
    });
  }

  terminate(): Promise<number> {
    this.terminating = true;
    return this.worker.terminate();
  }
}

/**
 * Streams the corpus through `workers` tokenizer threads and sums their token counts.
 * The reader runs on this thread and keeps every worker supplied with up to IN_FLIGHT_PER_WORKER batches,
 * waiting only when all of them are full, so memory stays bounded and workers never starve.
 */
export async function countCorpus(options: CountOptions): Promise<CountResult> {
  const started = process.hrtime.bigint();
  let failure: Error | undefined;
  let wakeReader: (() => void) | undefined;
  const wake = () => {
    const w = wakeReader;
    wakeReader = undefined;
    w?.();
  };
  const fail = (err: Error) => {
    failure ??= err;
    wake();
  };

  const pending = new Map<number, PendingBatch>();
  const perSet = new Map<string, SetTally>();
  const progress: CountProgress = { documents: 0, tokens: 0, textBytes: 0, fileBytesRead: 0 };
  const report = () => options.onProgress?.(progress);

  const onBatchDone = (seq: number, tokens: number[]) => {
    const batch = pending.get(seq)!;
    pending.delete(seq);
    tokens.forEach((n, i) => {
      const tally = setTally(perSet, batch.sets[i]);
      tally.documents++;
      tally.tokens += n;
      tally.textBytes += batch.textBytes[i];
      progress.documents++;
      progress.tokens += n;
      progress.textBytes += batch.textBytes[i];
    });
    report();
    wake();
  };

  const setup: WorkerSetup = { tokenizer: options.tokenizer, route: options.route ?? 'auto' };
  const workerCount = Math.max(1, Math.floor(options.workers));
  const workers = Array.from({ length: workerCount }, () => new CountWorker(setup, onBatchDone, fail));
  try {
    const readies = await Promise.all(workers.map((w) => w.ready()));
    const startupSeconds = secondsSince(started);
    const { route, reason } = readies[0];

    let seq = 0;
    let texts: string[] = [];
    let batch: PendingBatch = { sets: [], textBytes: [] };
    let batchChars = 0;
    let documentsRead = 0;

    const waitForFreeWorker = async (): Promise<CountWorker> => {
      for (;;) {
        if (failure) throw failure;
        const free = workers.reduce((best, w) => (w.inFlight < best.inFlight ? w : best));
        if (free.inFlight < IN_FLIGHT_PER_WORKER) return free;
        await new Promise<void>((resolve) => (wakeReader = resolve));
      }
    };
    const dispatch = async () => {
      if (texts.length === 0) return;
      const worker = await waitForFreeWorker();
      pending.set(seq, batch);
      worker.send({ type: 'batch', seq, texts });
      seq++;
      texts = [];
      batch = { sets: [], textBytes: [] };
      batchChars = 0;
    };

    const readOptions: ReadOptions = {
      ...options.read,
      onBytes: (n) => {
        progress.fileBytesRead += n;
      },
    };
    const maxDocs = options.maxDocs ?? Infinity;
    const maxTokens = options.maxTokens ?? Infinity;
    const documents: AsyncGenerator<CorpusDocument> = readCorpus(options.files, readOptions);
    try {
      for await (const doc of documents) {
        if (options.signal?.aborted) throw new UserError('interrupted', 130);
        if (documentsRead >= maxDocs || progress.tokens >= maxTokens) break;
        documentsRead++;
        texts.push(doc.text);
        batch.sets.push(doc.setName);
        batch.textBytes.push(Buffer.byteLength(doc.text, 'utf8'));
        batchChars += doc.text.length;
        if (batchChars >= BATCH_CHARS || texts.length >= BATCH_DOCS) await dispatch();
      }
      await dispatch();
    } finally {
      await documents.return(undefined);
    }
    while (pending.size > 0) {
      if (failure) throw failure;
      await new Promise<void>((resolve) => (wakeReader = resolve));
    }
    if (failure) throw failure;

    const counts = new Float64Array(options.vocabSize);
    for (const part of await Promise.all(workers.map((w) => w.finish()))) {
      if (part.length > counts.length) throw new Error(`worker counted ${part.length} ids, expected ${counts.length}`);
      for (let id = 0; id < part.length; id++) counts[id] += part[id];
    }
    let tokens = progress.tokens;
    if (options.bosId != null) {
      counts[options.bosId] += progress.documents;
      tokens += progress.documents;
      for (const tally of perSet.values()) tally.tokens += tally.documents;
    }
    return {
      counts,
      documents: progress.documents,
      tokens,
      textBytes: progress.textBytes,
      perSet,
      route,
      routeReason: reason ?? options.routeReason,
      seconds: secondsSince(started),
      startupSeconds,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function setTally(perSet: Map<string, SetTally>, name: string): SetTally {
  let tally = perSet.get(name);
  if (!tally) {
    tally = { documents: 0, tokens: 0, textBytes: 0 };
    perSet.set(name, tally);
  }
  return tally;
}
