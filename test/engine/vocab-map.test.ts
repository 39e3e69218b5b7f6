import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadVocabMap } from '../../src/engine/vocab-map.js';
import { UserError } from '../../src/util/errors.js';

describe('engine/vocab-map', () => {
  let root: string;
  let modelDir: string;
  let repoMaps: string;
  const tokenizerJson = '{"model": {"type": "BPE", "vocab": {}}}';

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-vocab-map-'));
    modelDir = join(root, 'model');
    mkdirSync(modelDir);
    writeFileSync(join(modelDir, 'tokenizer.json'), tokenizerJson);
    repoMaps = join(root, 'vocab-maps');
    const sha256 = createHash('sha256').update(tokenizerJson).digest('hex');
    for (const [name, sha, ids] of [['other', 'f'.repeat(64), [9, 8]], ['mine', sha256, [5, 4, 3]]] as const) {
      mkdirSync(join(repoMaps, name), { recursive: true });
      writeFileSync(join(repoMaps, name, 'manifest.json'), JSON.stringify({ tokenizer: { name, sha256: sha, vocab_size: 10 } }));
      writeFileSync(join(repoMaps, name, 'freq_3.json'), JSON.stringify(ids));
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a size is looked up in the model folder first, then in the repository map built for its tokenizer', () => {
    const model = { dir: modelDir, vocabSize: 10 };
    const map = loadVocabMap('3', model, repoMaps);
    expect(Array.from(map.ids)).to.deep.equal([5, 4, 3]);
    expect(map.file).to.equal(join(repoMaps, 'mine', 'freq_3.json'));
    mkdirSync(join(modelDir, 'vocab-maps'));
    writeFileSync(join(modelDir, 'vocab-maps', 'freq_3.json'), '[1, 2, 0]');
    expect(Array.from(loadVocabMap('3', model, repoMaps).ids)).to.deep.equal([1, 2, 0]);
    rmSync(join(modelDir, 'vocab-maps'), { recursive: true });
  });

  it('a file from another tokenizer of the same size loads with a warning; folders and .pt names resolve to the JSON', () => {
    const model = { dir: modelDir, vocabSize: 10, tokenizerVocabSize: 10 };
    const map = loadVocabMap(join(repoMaps, 'other', 'freq_3.json'), model, repoMaps);
    expect(map.warnings.join()).to.match(/built for tokenizer other/);
    expect(loadVocabMap(join(repoMaps, 'other', 'freq_3.pt'), model, repoMaps).file).to.equal(join(repoMaps, 'other', 'freq_3.json'));
  });

  it('refuses what cannot be this model\'s map', () => {
    const model = { dir: modelDir, vocabSize: 10, tokenizerVocabSize: 12 };
    const bad = (spec: string, pattern: RegExp) => expect(() => loadVocabMap(spec, model, repoMaps)).to.throw(UserError, pattern);
    bad(join(repoMaps, 'other', 'freq_3.json'), /built for tokenizer other \(10 ids\), not for this model's tokenizer \(vocabulary of 12\)/);
    const write = (name: string, text: string) => {
      writeFileSync(join(root, name), text);
      return join(root, name);
    };
    bad(write('dup.json', '[1, 2, 1]'), /lists id 1 twice/);
    bad(write('float.json', '[1, 2.5]'), /entry 1 is not a token id/);
    bad(write('empty.json', '[]'), /non-empty JSON list/);
    bad(write('broken.json', '[1,'), /not a JSON list/);
    bad(write('far.json', '[1, 10]'), /lists id 10, outside the model's vocabulary \(0\.\.9\)/);
    bad(join(root, 'nowhere.json'), /not found/);
    bad('11', /size 11 must be between 1 and the model's vocabulary of 10/);
    bad('7', /no freq_7\.json/);
  });
});
