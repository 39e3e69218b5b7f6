import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { defaultMethodList, parseMethodList, resolveMethods } from '../../src/bench/methods.js';
import { readModelInfo } from '../../src/bench/model-info.js';
import { UserError } from '../../src/util/errors.js';
import { makeTempDir, writeModelFolder } from './helpers/model-folder.js';

function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('bench methods and model folders', function () {
  let tmp: string;
  beforeEach(() => {
    tmp = makeTempDir();
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('parses a method list, dropping repeats', function () {
    expect(parseMethodList('vanilla, eagle2,fr-spec:8,vanilla,sps,ouroboros')).to.deep.equal([
      { label: 'vanilla', method: 'vanilla' },
      { label: 'eagle2', method: 'eagle2' },
      { label: 'fr-spec:8', method: 'fr-spec', vocabSize: 8 },
      { label: 'sps', method: 'sps' },
      { label: 'ouroboros', method: 'ouroboros' },
    ]);
  });

  it('refuses unknown methods and malformed sizes', function () {
    expect(userErrorOf(() => parseMethodList('vanilla,medusa'))).to.equal('unknown method "medusa"; known methods: vanilla, eagle2, fr-spec:<size>, sps, ouroboros');
    expect(userErrorOf(() => parseMethodList('fr-spec'))).to.match(/needs its vocabulary size, e.g. fr-spec:32768/);
    expect(userErrorOf(() => parseMethodList('fr-spec:big'))).to.match(/size must be a whole number/);
    expect(userErrorOf(() => parseMethodList('eagle2:8'))).to.match(/only fr-spec takes a size/);
    expect(userErrorOf(() => parseMethodList(' , '))).to.match(/no method given/);
  });

  it('identifies a model folder by the hash of its config.json and lists its subsets', function () {
    const a = readModelInfo(writeModelFolder(path.join(tmp, 'a')));
    const b = readModelInfo(writeModelFolder(path.join(tmp, 'b')));
    const c = readModelInfo(writeModelFolder(path.join(tmp, 'c'), { source: 'other' }));
    expect(a.configSha256).to.equal(b.configSha256);
    expect(a.configSha256).not.to.equal(c.configSha256);
    expect([...a.vocabMaps.keys()].sort()).to.deep.equal([16, 8]);
    expect(a).to.include({ hasEagle: true, hasDraft: true, source: 'tiny-target' });
  });

  it('attaches subset files, and says which sizes exist when one is missing', function () {
    const model = readModelInfo(writeModelFolder(path.join(tmp, 'm')));
    const [spec] = resolveMethods(parseMethodList('fr-spec:8'), model);
    expect(spec.vocabFile).to.equal(path.join(tmp, 'm', 'vocab-maps', 'freq_8.json'));
    expect(userErrorOf(() => resolveMethods(parseMethodList('fr-spec:32768'), model))).to.match(/fr-spec:32768: no vocab map freq_32768\.json in .* \(it has 8, 16\); build one with fr-spec build-vocab --sizes 32768/);
  });

  it('takes more subsets from --vocab-maps', function () {
    const extra = path.join(tmp, 'maps');
    fs.mkdirSync(extra);
    fs.writeFileSync(path.join(extra, 'freq_4.json'), '[0,1,2,3]');
    const model = readModelInfo(writeModelFolder(path.join(tmp, 'm')), extra);
    expect(resolveMethods(parseMethodList('fr-spec:4'), model)[0].vocabFile).to.equal(path.join(extra, 'freq_4.json'));
    expect(userErrorOf(() => readModelInfo(path.join(tmp, 'm'), path.join(tmp, 'nowhere')))).to.match(/no such folder/);
  });

  it('refuses methods the folder cannot run', function () {
    const plain = readModelInfo(writeModelFolder(path.join(tmp, 'p'), { eagle: false, draft: false, vocabSizes: [] }));
    expect(userErrorOf(() => resolveMethods(parseMethodList('eagle2'), plain))).to.match(/eagle2 needs an EAGLE head, and .* has none \(export it with fr-spec export --eagle/);
    expect(userErrorOf(() => resolveMethods(parseMethodList('ouroboros'), plain))).to.match(/ouroboros needs a draft model/);
    expect(defaultMethodList(plain)).to.equal('vanilla');
    expect(defaultMethodList(readModelInfo(writeModelFolder(path.join(tmp, 'full'))))).to.equal('vanilla,eagle2,fr-spec:8,fr-spec:16,sps,ouroboros');
  });

  it('refuses a folder that is not a model folder', function () {
    expect(userErrorOf(() => readModelInfo(tmp))).to.match(/not a model folder \(no config\.json\)/);
  });
});
