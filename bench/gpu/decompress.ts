/**
 * Writes a corpus shard's decompressed bytes (.jsonl.zst / .jsonl.gz → .jsonl) with fr-spec's own
 * readers, for hosts whose Python has no zstandard module and that have no zstd CLI (the GPU host):
 *
 *   node --import tsx bench/gpu/decompress.ts SHARD OUT_FILE
 */
import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { once } from 'node:events';
import { decompressedChunks } from '../../src/corpus/read.js';
import { resolveCorpus } from '../../src/corpus/sources.js';

const [shard, outFile] = process.argv.slice(2);
if (!shard || !outFile) throw new Error('usage: decompress.ts SHARD OUT_FILE');
const [file] = await resolveCorpus([shard]);
const partial = `${outFile}.partial`;
const out = createWriteStream(partial);
for await (const chunk of decompressedChunks(file)) if (!out.write(chunk)) await once(out, 'drain');
out.end();
await once(out, 'finish');
await rename(partial, outFile);
