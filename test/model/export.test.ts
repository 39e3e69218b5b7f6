import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadWeights } from '../../src/model/head-weights.js';
import { CONTRACT_VERSION, ModelFolder, type ModelFolderConfig } from '../../src/model/model-folder.js';
import { decodeModel } from '../../src/model/onnx/proto.js';
import { UserError } from '../../src/util/errors.js';
import { writeHfCheckpoint } from './helpers/hf-checkpoints.js';
import { expectEachTensorOnce, storedTensors } from './helpers/onnx-files.js';
import { randomLlamaWeights } from './helpers/reference-llama.js';
import {
  DRAFT_CONFIG,
  EAGLE_CONFIG,
  LLAMA_TARGET_CONFIG,
  runExportCli,
  writeTinyDecoder,
  writeTinyEagle,
  writeTinyModelSet,
  type TinyModelSet,
} from './helpers/tiny-models.js';

async function expectExportError(args: string[], pattern: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await runExportCli(args);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'export should fail').to.be.instanceOf(UserError);
  expect((caught as Error).message, (caught as Error).message).to.match(pattern);
  expect((caught as Error).message, 'one line').not.to.include('\n');
}

describe('model/export (fr-spec export)', () => {
  let root: string;
  let models: TinyModelSet;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-export-'));
    models = writeTinyModelSet(root);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('a target with an EAGLE head, a draft model and vocab maps', () => {
    let out: string;
    let config: ModelFolderConfig;

    before(async () => {
      const vocabMaps = join(root, 'vocab-maps-src');
      mkdirSync(vocabMaps);
      writeFileSync(join(vocabMaps, 'freq_8.json'), '[3,1,4,15,9,2,6,5]\n');
      writeFileSync(join(vocabMaps, 'freq_16.json'), JSON.stringify([...Array(16).keys()]));
      writeFileSync(join(vocabMaps, 'manifest.json'), '{}');
      out = join(root, 'models', 'full');
      await runExportCli(['--target', models.target.dir, '--eagle', models.eagle.dir, '--draft', models.draft.dir, '--out', out, '--dtype', 'fp32', '--vocab-maps', vocabMaps]);
      config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as ModelFolderConfig;
    });

    it('writes the contract folder layout and nothing else', () => {
      expect(readdirSync(out).sort()).to.deep.equal([
        'config.json',
        'draft.onnx',
        'eagle.onnx',
        'generation_config.json',
        'lm_head.onnx',
        'target.onnx',
        'tokenizer.json',
        'tokenizer_config.json',
        'vocab-maps',
        'weights.data',
      ]);
      expect(readdirSync(join(out, 'vocab-maps')).sort()).to.deep.equal(['freq_16.json', 'freq_8.json', 'manifest.json']);
      expect(readdirSync(join(root, 'models')).filter((name) => name.includes('.tmp-')), 'no temporary folder left behind').to.deep.equal([]);
    });

    it('describes the folder in config.json', () => {
      expect(config).to.include({ format: 'fr-spec-model', contract_version: CONTRACT_VERSION, dtype: 'float32', vocab_size: 97, hidden_size: 32, bos_token_id: 1 });
      expect(config.eos_token_ids, 'from generation_config.json').to.deep.equal([2, 7]);
      expect(config.target).to.deep.include({ file: 'target.onnx', source: 'llama-target' });
      expect(config.target.architecture).to.deep.include({ model_type: 'llama', num_layers: 2, num_kv_heads: 2, head_dim: 8, vocab_size: 97 });
      expect(config.target.architecture.rope_scaling).to.deep.include({ type: 'llama3', factor: 8 });
      expect(config.lm_head).to.deep.equal({ file: 'lm_head.onnx', vocab_size: 97, hidden_size: 32 });
      expect(config.weights).to.deep.equal({ file: 'weights.data', dtype: 'float32', vocab_tables: 'float' });
      expect(config.eagle!.architecture).to.deep.include({ num_layers: 1, num_kv_heads: 2, head_dim: 8, fc_bias: true, qkv_bias: false });
      expect(config.draft!.architecture).to.deep.include({ hidden_size: 16, num_layers: 1, num_kv_heads: 1 });
      expect(config.tokenizer_files).to.deep.equal(['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
      expect(config.vocab_maps).to.deep.equal(['vocab-maps/freq_8.json', 'vocab-maps/freq_16.json']);
      expect(ModelFolder.open(out).config).to.deep.equal(config);
    });

    it('tags every graph with its role and the contract version', () => {
      const metadata = (file: string) => Object.fromEntries((decodeModel(readFileSync(join(out, file))).metadata_props ?? []).map((e) => [e.key, e.value]));
      for (const [file, role] of [['target.onnx', 'target'], ['eagle.onnx', 'eagle'], ['draft.onnx', 'draft'], ['lm_head.onnx', 'lm_head']]) {
        expect(metadata(file)).to.include({ 'fr-spec.graph': role, 'fr-spec.contract_version': String(CONTRACT_VERSION), 'fr-spec.dtype': 'float32' });
      }
    });

    it('stores every weight of the four graphs once, in weights.data', () => {
      const stored = storedTensors(out, ['target.onnx', 'lm_head.onnx', 'eagle.onnx', 'draft.onnx']);
      const at = (file: string, name: string) => stored.find((t) => t.file === file && t.name === name)!.range;
      expect(at('lm_head.onnx', 'lm_head.weight'), 'the LM head').to.equal(at('target.onnx', 'lm_head.weight'));
      expect(at('eagle.onnx', 'model.embed_tokens.weight'), 'the embedding').to.equal(at('target.onnx', 'model.embed_tokens.weight'));
      expectEachTensorOnce(out, stored);
    });

    it('keeps the LM head rows readable from weights.data, in HF order', () => {
      const head = HeadWeights.open(join(out, 'lm_head.onnx'));
      expect([head.vocabSize, head.hiddenSize, head.storage]).to.deep.equal([97, 32, 'float32']);
      const hfHead = models.target.weights.readFloat32('lm_head.weight').data;
      const rows = head.readRows([5, 0, 96]);
      for (const [i, id] of [5, 0, 96].entries()) expect(Array.from(rows.subarray(i * 32, (i + 1) * 32))).to.deep.equal(Array.from(hfHead.subarray(id * 32, (id + 1) * 32)));
      expect(() => head.readRows([97])).to.throw(UserError, /outside the head's vocabulary/);
    });
  });

  it('exports fp16 by default, without optional parts', async () => {
    const out = join(root, 'models', 'fp16');
    await runExportCli(['--target', models.target.dir, '--out', out]);
    const config = ModelFolder.open(out).config;
    expect(config.dtype).to.equal('float16');
    expect(config.eagle).to.equal(undefined);
    expect(config.draft).to.equal(undefined);
    expect(config.vocab_maps).to.deep.equal([]);
    expect(config.weights).to.deep.equal({ file: 'weights.data', dtype: 'float16', vocab_tables: 'float' });
    expect(HeadWeights.open(join(out, 'lm_head.onnx')).storage).to.equal('float16');
  });

  it('--ops fused (the default) vs --ops standard: the same contract from ≈ 2.5× fewer nodes per layer (opset 23 Attention and RotaryEmbedding, fused RMSNorm)', async () => {
    const standard = join(root, 'models', 'ops-standard');
    const fused = join(root, 'models', 'ops-fused');
    const args = ['--target', models.target.dir, '--eagle', models.eagle.dir, '--draft', models.draft.dir, '--dtype', 'fp16'];
    await runExportCli([...args, '--out', standard, '--ops', 'standard']);
    await runExportCli([...args, '--out', fused]);
    expect(ModelFolder.open(fused).config.ops, 'the default').to.equal('fused');
    expect(ModelFolder.open(standard).config.ops).to.equal('standard');
    const layers = { 'target.onnx': LLAMA_TARGET_CONFIG.num_hidden_layers, 'eagle.onnx': EAGLE_CONFIG.num_hidden_layers, 'draft.onnx': DRAFT_CONFIG.num_hidden_layers };
    for (const [file, numLayers] of Object.entries(layers)) {
      const before = decodeModel(readFileSync(join(standard, file)));
      const after = decodeModel(readFileSync(join(fused, file)));
      const opset = (m: typeof after) => m.opset_import.find((o) => !o.domain)?.version;
      expect(opset(before), file).to.equal(21);
      expect(opset(after), file).to.equal(23);
      expect(after.ir_version, file).to.be.at.least(11);
      const metadata = (m: typeof after) => Object.fromEntries((m.metadata_props ?? []).map((e) => [e.key, e.value]));
      expect(metadata(after)['fr-spec.ops'], file).to.equal('fused');
      expect(metadata(before)['fr-spec.ops'], file).to.equal('standard');
      const count = (m: typeof after, op: string) => m.graph.node.filter((n) => n.op_type === op).length;
      expect(count(after, 'Attention'), file).to.equal(numLayers);
      expect(count(after, 'RotaryEmbedding'), file).to.equal(2 * numLayers);
      // Residual adds live in norm nodes: each layer's post-attention norm, the input norms of layers after the
      // first and the final norm (target and draft; the EAGLE graph has no final norm and outputs a plain sum).
      expect(count(after, 'SkipSimplifiedLayerNormalization'), file).to.equal(file === 'eagle.onnx' ? 2 * numLayers - 1 : 2 * numLayers);
      for (const gone of ['Softmax', 'Sqrt', 'Neg', 'Transpose']) expect(count(after, gone), `${file}: ${gone}`).to.equal(0);
      expect(after.graph.input.map((i) => i.name), file).to.deep.equal(before.graph.input.map((i) => i.name));
      expect(after.graph.output.map((o) => o.name), file).to.deep.equal(before.graph.output.map((o) => o.name));
      // Per layer (what the graph adds beyond embedding, position tables and head): at most 40% of the standard nodes.
      const perLayer = (m: typeof after) => m.graph.node.filter((n) => /layers\.\d+\//.test(n.name)).length / numLayers;
      expect(perLayer(after), file).to.be.at.most(0.4 * perLayer(before));
    }
    // The same weights, with q/k/v packed side by side: row r of a packed [in, Σ out] weight is row r of each
    // part, in order. Gate and up stay two weights (two MatMuls cost less host time on CUDA than one and a Split).
    const tensorsOf = (dir: string) => {
      const data = readFileSync(join(dir, 'weights.data'));
      const stored = storedTensors(dir, ['target.onnx', 'eagle.onnx']);
      return (name: string) => {
        const t = stored.find((s) => s.name === name)!;
        expect(t, `${dir}: ${name}`).to.not.equal(undefined);
        return { dims: t.dims.map(Number), bytes: data.subarray(t.offset, t.offset + t.length) };
      };
    };
    const [standardTensor, fusedTensor] = [tensorsOf(standard), tensorsOf(fused)];
    const packs = [
      ['self_attn.qkv_proj.weight', ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight']],
    ] as const;
    for (const prefix of ['model.layers.0.', 'model.layers.1.', 'layers.0.']) {
      for (const [packedName, partNames] of packs) {
        const packed = fusedTensor(prefix + packedName);
        const parts = partNames.map((name) => standardTensor(prefix + name));
        const rows = packed.dims[0];
        expect(packed.dims, prefix + packedName).to.deep.equal([rows, parts.reduce((sum, p) => sum + p.dims[1], 0)]);
        const rowBytes = (t: { dims: number[]; bytes: Buffer }, r: number) => t.bytes.subarray((r * t.bytes.length) / t.dims[0], ((r + 1) * t.bytes.length) / t.dims[0]);
        for (let r = 0; r < rows; r++) expect(rowBytes(packed, r).equals(Buffer.concat(parts.map((p) => rowBytes(p, r)))), `${prefix}${packedName} row ${r}`).to.equal(true);
      }
      for (const name of ['mlp.gate_proj.weight', 'mlp.up_proj.weight']) {
        const [f, s] = [fusedTensor(prefix + name), standardTensor(prefix + name)];
        expect(f.dims, prefix + name).to.deep.equal(s.dims);
        expect(f.bytes.equals(s.bytes), prefix + name).to.equal(true);
      }
      expect(storedTensors(fused, ['target.onnx', 'eagle.onnx']).some((t) => t.name === `${prefix}mlp.gate_up_proj.weight`), prefix).to.equal(false);
    }
  });

  describe('bad input', () => {
    const outDir = () => join(root, 'models', 'never');
    afterEach(() => expect(existsSync(outDir()), 'no output folder after a failure').to.equal(false));

    it('a folder without config.json', async () => {
      const dir = join(root, 'no-config');
      mkdirSync(dir);
      await expectExportError(['--target', dir, '--out', outDir()], /--target .*no-config: no config\.json \(expected a Hugging Face model folder\)/);
    });

    it('a target folder that does not exist', async () => {
      await expectExportError(['--target', join(root, 'missing'), '--out', outDir()], /--target .*missing: no such folder/);
    });

    it('an unsupported architecture', async () => {
      const dir = writeHfCheckpoint(join(root, 'mistral'), { ...LLAMA_TARGET_CONFIG, model_type: 'mistral' }, randomLlamaWeights(models.target.arch, 1));
      await expectExportError(['--target', dir, '--out', outDir()], /--target .*mistral: config\.json: model_type mistral is not supported \(supported: llama, qwen2\)/);
    });

    it('sliding-window attention', async () => {
      const dir = writeHfCheckpoint(join(root, 'windowed'), { ...LLAMA_TARGET_CONFIG, model_type: 'qwen2', use_sliding_window: true }, randomLlamaWeights(models.target.arch, 1));
      await expectExportError(['--target', dir, '--out', outDir()], /sliding-window attention is not supported/);
    });

    it('a .bin-only checkpoint', async () => {
      const dir = join(root, 'pickle');
      mkdirSync(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(LLAMA_TARGET_CONFIG));
      writeFileSync(join(dir, 'pytorch_model.bin'), 'pickle');
      await expectExportError(['--target', dir, '--out', outDir()], /pytorch_model\.bin: PyTorch \.bin checkpoints are not supported; convert to safetensors/);
    });

    it('a weight with the wrong shape: names the weight and both shapes', async () => {
      const weights = randomLlamaWeights(models.target.arch, 2);
      const name = 'model.layers.1.mlp.up_proj.weight';
      weights.tensors.set(name, { shape: [64, 31], data: new Float32Array(64 * 31) });
      const dir = writeHfCheckpoint(join(root, 'bad-shape'), LLAMA_TARGET_CONFIG, weights);
      await expectExportError(['--target', dir, '--out', outDir()], /--target .*bad-shape: model\.layers\.1\.mlp\.up_proj\.weight: expected shape \[64, 32\], found \[64, 31\]/);
    });

    it('a missing weight', async () => {
      const weights = randomLlamaWeights(models.target.arch, 3);
      weights.tensors.delete('model.norm.weight');
      const dir = writeHfCheckpoint(join(root, 'no-norm'), LLAMA_TARGET_CONFIG, weights);
      await expectExportError(['--target', dir, '--out', outDir()], /no-norm: the checkpoint has no tensor named model\.norm\.weight/);
    });

    it('an EAGLE head whose hidden size differs from the target\'s', async () => {
      const config = { ...EAGLE_CONFIG, hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1 };
      const { dir } = writeTinyEagle(join(root, 'eagle-16'), config, models.draft.arch, 6);
      await expectExportError(['--target', models.target.dir, '--eagle', dir, '--out', outDir()], /--eagle .*eagle-16: config\.json: the EAGLE head's hidden_size 16 differs from the target's 32/);
    });

    it('an EAGLE head without fc.bias whose config leaves "bias" out', async () => {
      const head = writeTinyEagle(join(root, 'eagle-no-bias'), { ...EAGLE_CONFIG, bias: false }, models.target.arch, 4);
      writeFileSync(join(head.dir, 'config.json'), JSON.stringify(EAGLE_CONFIG));
      await expectExportError(['--target', models.target.dir, '--eagle', head.dir, '--out', outDir()], /has no fc\.bias, but its config\.json sets "bias": true \(or leaves it out/);
    });

    it('an EAGLE-3 head', async () => {
      const dir = join(root, 'eagle3');
      writeHfCheckpoint(dir, { ...EAGLE_CONFIG, draft_vocab_size: 32 }, models.eagle.weights);
      await expectExportError(['--target', models.target.dir, '--eagle', dir, '--out', outDir()], /EAGLE-3 head/);
    });

    it('a plain model passed as the EAGLE head', async () => {
      await expectExportError(['--target', models.target.dir, '--eagle', models.draft.dir, '--out', outDir()], /--eagle .*draft: not an EAGLE-1\/2 head: the checkpoint has no fc\.weight/);
    });

    it('fp32 weights under fp16 graphs', async () => {
      await expectExportError(['--target', models.target.dir, '--out', outDir(), '--dtype', 'fp16', '--weight-dtype', 'fp32'], /--weight-dtype fp32 with --dtype fp16 would store weights at a precision the graphs cannot use/);
    });

    it('an unknown --quantize-vocab mode', async () => {
      let caught: unknown;
      try {
        await runExportCli(['--target', models.target.dir, '--out', outDir(), '--quantize-vocab', 'int4']);
      } catch (error) {
        caught = error;
      }
      expect(String(caught)).to.match(/Allowed choices are none, int8/);
    });

    it('an unknown --dtype', async () => {
      let caught: unknown;
      try {
        await runExportCli(['--target', models.target.dir, '--out', outDir(), '--dtype', 'bf16']);
      } catch (error) {
        caught = error;
      }
      expect(String(caught)).to.match(/Allowed choices are fp16, fp32/);
    });
  });

  describe('an existing output folder', () => {
    it('is refused without --force and left untouched', async () => {
      const out = join(root, 'models', 'existing');
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'keep.txt'), 'mine');
      await expectExportError(['--target', models.target.dir, '--out', out], /output folder .*existing already exists; use --force to replace it/);
      expect(readdirSync(out)).to.deep.equal(['keep.txt']);
    });

    it('is replaced with --force', async () => {
      const out = join(root, 'models', 'replaced');
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'old.txt'), 'old');
      await runExportCli(['--target', models.target.dir, '--draft', models.draft.dir, '--out', out, '--force']);
      expect(readdirSync(out)).to.include('target.onnx').and.not.include('old.txt');
      expect(readdirSync(join(root, 'models')).filter((name) => name.includes('.tmp-'))).to.deep.equal([]);
    });
  });

  it('reads a checkpoint whose single safetensors file has another name, and refuses a tensor stored twice', () => {
    const dir = join(root, 'two-files');
    const target = writeTinyDecoder(dir, DRAFT_CONFIG, 5, { fileName: 'weights-a.safetensors' });
    writeHfCheckpoint(join(root, 'two-files-b'), DRAFT_CONFIG, target.weights, { fileName: 'weights-b.safetensors' });
    writeFileSync(join(dir, 'weights-b.safetensors'), readFileSync(join(root, 'two-files-b', 'weights-b.safetensors')));
    return expectExportError(['--target', dir, '--out', join(root, 'models', 'never')], /tensor .* is in both weights-a\.safetensors and weights-b\.safetensors/);
  });
});
