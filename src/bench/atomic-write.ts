import { renameSync, writeFileSync } from 'node:fs';

/** Writes through a temporary sibling and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, content: string): void {
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, content);
  renameSync(temporary, file);
}
