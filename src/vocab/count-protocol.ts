/** Messages between the counting coordinator and its worker threads. */

export interface WorkerSetup {
  tokenizer: string;
  route: 'auto' | 'fast' | 'reference';
}

export type WorkerRequest =
  | { type: 'batch'; seq: number; texts: string[] }
  | { type: 'finish' };

export type WorkerReply =
  | { type: 'ready'; route: 'fast' | 'reference'; reason?: string }
  | { type: 'batch-done'; seq: number; tokens: number[] }
  | { type: 'counts'; counts: Float64Array }
  | { type: 'error'; message: string };
