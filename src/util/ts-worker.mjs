// Worker-thread bootstrap: worker threads do not inherit tsx's loader when the CLI registered it
// through the API (bin/fr-spec), so each worker registers it before importing its TypeScript entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
