// Worker thread: loads the tokenizer once, counts the documents of each batch it is sent, and returns the
// per-document token numbers; on 'finish' it flushes and transfers its whole counts vector back.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizer } from '../tokenizer/load.js';
import { createTokenCounter } from '../tokenizer/fast-count.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './count-protocol.js';

const port = parentPort!;
const setup = workerData as WorkerSetup;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

try {
  const tokenizer = await loadTokenizer(setup.tokenizer);
  const { counter, reason } = createTokenCounter(tokenizer, { route: setup.route });
  reply({ type: 'ready', route: counter.route, reason });
  port.on('message', (request: WorkerRequest) => {
    try {
      if (request.type === 'batch') {
        const tokens = request.texts.map((text) => counter.add(text));
        reply({ type: 'batch-done', seq: request.seq, tokens });
      } else {
        counter.flush();
        const counts = counter.counts.slice();
        reply({ type: 'counts', counts }, [counts.buffer]);
      }
    } catch (err) {
      reply({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  });
} catch (err) {
  reply({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
