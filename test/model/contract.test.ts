import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decoderSpec } from '../../src/model/contract.js';
import { resolveDecoderConfig } from '../../src/model/llama-config.js';
import { buildLlamaTargetGraph } from '../../src/model/llama-graph.js';
import { CONTRACT_VERSION, decoderFacts, ModelFolder } from '../../src/model/model-folder.js';
import { GraphBuilder } from '../../src/model/onnx/builder.js';
import { createCheckedSession, sessionOptions } from '../../src/model/session.js';
import { loadOrt } from '../../src/model/ort-runtime.js';
import { UserError } from '../../src/util/errors.js';
import { randomLlamaWeights } from './helpers/reference-llama.js';

const ARCH = resolveDecoderConfig({
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  vocab_size: 20,
});

async function loadError(graph: GraphBuilder): Promise<Error | undefined> {
  const spec = decoderSpec(decoderFacts('llama', ARCH), 'float32');
  return createCheckedSession(loadOrt(), graph.toBytes(), 'target.onnx', spec, sessionOptions('cpu')).then(
    async (session) => {
      await session.release();
      return undefined;
    },
    (error: unknown) => error as Error,
  );
}

describe('model/contract', () => {
  it('accepts the exported target graph', async () => {
    expect(await loadError(buildLlamaTargetGraph(ARCH, randomLlamaWeights(ARCH, 1), { dtype: 'float32' }))).to.equal(undefined);
  });

  it('lists what a non-conforming graph gets wrong', async () => {
    const b = new GraphBuilder('other-exporter');
    const ids = b.input('input_ids', 'int64', [1, 'S']);
    b.input('position_ids', 'int32', [1, 'S']);
    b.input('attention_mask', 'int64', [1, 'T']);
    b.input('past_key_0', 'float32', [1, 'P', 2, 8]);
    b.output(b.op('Identity', [ids]), 'int64', [1, 'S'], 'argmax');
    const error = await loadError(b);
    expect(error).to.be.instanceOf(UserError);
    expect(error!.message).to.match(/^target\.onnx does not follow the model contract: /);
    for (const problem of [
      'input position_ids is int32, expected int64',
      'missing input attention_bias',
      'input past_key_0 has shape [1, P, 2, 8], expected [1, past_sequence_length, 1, 8]',
      'missing input past_value_0',
      'missing output hidden',
      'missing output new_key_0',
      'unexpected input attention_mask',
    ]) {
      expect(error!.message).to.include(problem);
    }
  });

  describe('ModelFolder.open', () => {
    let root: string;
    before(() => {
      root = mkdtempSync(join(tmpdir(), 'fr-spec-folder-'));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    const folderWith = (name: string, config: unknown) => {
      const dir = join(root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      return dir;
    };
    const valid = {
      format: 'fr-spec-model',
      contract_version: CONTRACT_VERSION,
      dtype: 'float16',
      target: { file: 'target.onnx' },
      lm_head: { file: 'lm_head.onnx' },
    };

    it('explains what is wrong with a folder', () => {
      expect(() => ModelFolder.open(join(root, 'nothing'))).to.throw(UserError, /not a model folder \(no config\.json\); create one with fr-spec export/);
      expect(() => ModelFolder.open(folderWith('hf', { model_type: 'llama' }))).to.throw(UserError, /not an fr-spec model folder config.*Run fr-spec export on it/);
      expect(() => ModelFolder.open(folderWith('future', { ...valid, contract_version: 3 }))).to.throw(UserError, /contract_version 3 is not supported by this fr-spec \(it reads versions 1 and 2\); re-export the model/);
      expect(() => ModelFolder.open(folderWith('incomplete', valid))).to.throw(UserError, /target\.onnx is missing/);
      expect(() => ModelFolder.open(folderWith('v1', { ...valid, contract_version: 1 }))).to.throw(UserError, /target\.onnx is missing/);
      const storage = (weights: unknown) => folderWith(`weights-${JSON.stringify(weights).replace(/\W/g, '')}`, { ...valid, weights });
      expect(() => ModelFolder.open(storage({ file: 'weights.data', dtype: 'float32', vocab_tables: 'float' }))).to.throw(UserError, /weights must give dtype \(float16, or float32 under a float32 dtype\)/);
      expect(() => ModelFolder.open(storage({ file: 'weights.data', dtype: 'float16', vocab_tables: 'int4' }))).to.throw(UserError, /vocab_tables \(float or int8\)/);
      expect(() => ModelFolder.open(storage({ file: 'weights.data', dtype: 'float16', vocab_tables: 'int8' }))).to.throw(UserError, /target\.onnx is missing/);
      expect(() => ModelFolder.open(folderWith('ops', { ...valid, ops: 'turbo' }))).to.throw(UserError, /ops must be standard or fused, not "turbo"/);
      expect(() => ModelFolder.open(folderWith('ops-fused', { ...valid, ops: 'fused' }))).to.throw(UserError, /target\.onnx is missing/);
    });
  });
});
