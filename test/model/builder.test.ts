import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { float } from '../../src/model/onnx/attributes.js';
import { GraphBuilder, MICROSOFT_DOMAIN } from '../../src/model/onnx/builder.js';
import { decodeModel, encodeModel, OnnxAttributeType, OnnxDataLocation, OnnxDataType } from '../../src/model/onnx/proto.js';
import { createSession, floatTensor, floats, runOnce } from './helpers/ort.js';
import { expectClose, FP32_TOLERANCE, matmul, Rng } from './helpers/reference-math.js';

describe('model/onnx builder', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fr-spec-builder-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** y = x @ W + c, with W [4, 3]. */
  function affineGraph(rng: Rng) {
    const b = new GraphBuilder('affine');
    const x = b.input('x', 'float32', ['batch', 4]);
    const weight = rng.floats(12);
    const offset = rng.floats(3);
    const w = b.initializer('w', 'float32', [4, 3], weight);
    const c = b.initializer('c', 'float32', [3], offset);
    b.output(b.op('Add', [b.op('MatMul', [x, w]), c]), 'float32', ['batch', 3], 'y');
    return { b, weight, offset };
  }

  it('encodes a model that decodes to the same fields', () => {
    const { b } = affineGraph(new Rng(1));
    b.setMetadata('fr-spec.graph', 'test');
    const model = decodeModel(encodeModel(b.toModel()));
    expect(model.ir_version).to.equal(10);
    expect(model.opset_import).to.deep.equal([{ domain: '', version: 21 }]);
    expect(model.metadata_props).to.deep.equal([{ key: 'fr-spec.graph', value: 'test' }]);
    expect(model.graph.input[0].type.tensor_type.elem_type).to.equal(OnnxDataType.FLOAT);
    expect(model.graph.input[0].type.tensor_type.shape!.dim).to.deep.equal([{ dim_param: 'batch' }, { dim_value: 4 }]);
    expect(model.graph.node.map((n) => n.op_type)).to.deep.equal(['MatMul', 'Add', 'Identity']);
    expect(model.graph.output[0].name).to.equal('y');
    expect(model.graph.initializer.map((t) => [t.name, t.dims, t.raw_data!.byteLength])).to.deep.equal([
      ['w', [4, 3], 48],
      ['c', [3], 12],
    ]);
  });

  it('runs on onnxruntime and matches the reference', async () => {
    const rng = new Rng(2);
    const { b, weight, offset } = affineGraph(rng);
    const x = rng.floats(8);
    const out = await runOnce(b, { x: floatTensor('float32', x, [2, 4]) });
    const expected = matmul(x, weight, 2, 4, 3).map((v, i) => v + offset[i % 3]);
    expectClose(floats(out.y), expected, FP32_TOLERANCE);
  });

  it('prunes the nodes nothing reads, chains of them included, and keeps what outputs and subgraphs read', () => {
    const b = new GraphBuilder('prune');
    const x = b.input('x', 'float32', [2]);
    const kept = b.op('Relu', [x]);
    b.op('Neg', [b.op('Exp', [x])]); // a dead chain of two nodes
    const outer = b.op('Abs', [x]); // read only from inside a subgraph
    const inner = new GraphBuilder('inner');
    inner.outerValue(outer, 'float32');
    inner.output(inner.op('Sqrt', [outer]), 'float32', [2], 'inner_out');
    const branches = ['then_branch', 'else_branch'].map((name) => ({ name, type: OnnxAttributeType.GRAPH, g: inner.toModel().graph }));
    b.adoptNodes([{ name: 'if', op_type: 'If', domain: '', input: [b.constant('bool', [true], [])], output: ['branch'], attribute: branches }], { branch: 'float32' });
    b.output(b.op('Add', [kept, 'branch']), 'float32', [2], 'y');
    expect(b.pruneUnusedNodes()).to.equal(2);
    const ops = b.toModel().graph.node.map((n) => n.op_type);
    expect(ops).to.include.members(['Relu', 'Abs', 'If', 'Add', 'Identity']);
    expect(ops).to.not.include.members(['Exp', 'Neg']);
    expect(b.pruneUnusedNodes()).to.equal(0);
  });

  it('encodes attributes by kind', () => {
    const b = new GraphBuilder('attrs');
    const x = b.input('x', 'float32', [2]);
    b.op('Identity', [x], { axis: -1, perm: [1, 0], mode: 'linear', alpha: float(0.5) });
    const [attr] = decodeModel(b.toBytes()).graph.node.map((n) => n.attribute);
    expect(attr.map((a) => [a.name, a.type])).to.deep.equal([
      ['axis', OnnxAttributeType.INT],
      ['perm', OnnxAttributeType.INTS],
      ['mode', OnnxAttributeType.STRING],
      ['alpha', OnnxAttributeType.FLOAT],
    ]);
    expect(attr[0].i).to.equal(-1);
    expect(attr[1].ints).to.deep.equal([1, 0]);
    expect(new TextDecoder().decode(attr[2].s)).to.equal('linear');
    expect(attr[3].f).to.equal(0.5);
    expect(() => b.op('Identity', [x], { epsilon: 1e-5 })).to.throw(/not an integer/);
  });

  it('names nodes uniquely within scopes and tracks element types', () => {
    const b = new GraphBuilder('names');
    const x = b.input('x', 'float16', [2]);
    const first = b.scope('layer', () => b.op('Neg', [x]));
    const second = b.scope('layer', () => b.op('Neg', [x]));
    expect(first).to.equal('layer/Neg/output');
    expect(second).to.equal('layer/Neg_2/output');
    expect(b.dtypeOf(first)).to.equal('float16');
    expect(b.dtypeOf(b.op('Cast', [x], { to: OnnxDataType.FLOAT }))).to.equal('float32');
    expect(b.dtypeOf(b.op('ArgMax', [x]))).to.equal('int64');
    expect(() => b.op('Neg', ['missing'])).to.throw(/missing is not defined/);
    expect(() => b.input('x', 'float32', [1])).to.throw(/defined twice/);
  });

  it('shares small identical constants', () => {
    const b = new GraphBuilder('constants');
    expect(b.constant('int64', [0, -1])).to.equal(b.constant('int64', [0, -1]));
    expect(b.constant('int64', [0, -1])).not.to.equal(b.constant('int32', [0, -1]));
    expect(b.toModel().graph.initializer).to.have.length(2);
  });

  it('imports com.microsoft only when a node uses it', () => {
    const b = new GraphBuilder('domains');
    const x = b.input('x', 'float32', [2]);
    expect(b.toModel().opset_import).to.have.length(1);
    b.op('Gelu', [x], undefined, { domain: MICROSOFT_DOMAIN });
    expect(b.toModel().opset_import).to.deep.equal([
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ]);
    expect(() => b.op('Foo', [x], undefined, { domain: 'org.example' })).to.throw(/importOpset/);
  });

  it('stores fp32 data as fp16 bit patterns for float16 initializers', () => {
    const b = new GraphBuilder('half');
    b.initializer('h', 'float16', [3], new Float32Array([1, -2, 0.5]));
    const raw = b.toModel().graph.initializer[0].raw_data!;
    expect(Array.from(new Uint16Array(raw.slice().buffer))).to.deep.equal([0x3c00, 0xc000, 0x3800]);
    expect(() => b.initializer('bad', 'float32', [2, 2], [1, 2, 3])).to.throw(/3 values/);
  });

  it('saves weights inline below the threshold', () => {
    const { b } = affineGraph(new Rng(3));
    const saved = b.save(join(dir, 'inline.onnx'));
    expect(saved.dataPath).to.equal(undefined);
    expect(decodeModel(readFileSync(saved.modelPath)).graph.initializer[0].raw_data).to.have.length(48);
  });

  it('saves weights to an aligned external data file above the threshold and loads it', async () => {
    const rng = new Rng(4);
    const b = new GraphBuilder('external');
    const x = b.input('x', 'float32', [1, 64]);
    const w1 = rng.floats(64 * 32);
    const w2 = rng.floats(32 * 8);
    const hidden = b.op('MatMul', [x, b.initializer('w1', 'float32', [64, 32], w1)]);
    b.output(b.op('MatMul', [hidden, b.initializer('w2', 'float32', [32, 8], w2)]), 'float32', [1, 8], 'y');
    const modelPath = join(dir, 'external.onnx');
    const saved = b.save(modelPath, { externalDataThreshold: 1000, externalMinBytes: 1024, alignment: 4096 });
    expect(saved.dataPath).to.equal(`${modelPath}.data`);

    const [big, small] = decodeModel(readFileSync(modelPath)).graph.initializer;
    expect(big.data_location).to.equal(OnnxDataLocation.EXTERNAL);
    expect(big.raw_data).to.equal(undefined);
    const entries = Object.fromEntries(big.external_data!.map((e) => [e.key, e.value]));
    expect(entries).to.deep.equal({ location: 'external.onnx.data', offset: '0', length: String(64 * 32 * 4) });
    expect(small.data_location).to.equal(OnnxDataLocation.EXTERNAL); // 1024 bytes: at the limit
    const smallOffset = Number(small.external_data!.find((e) => e.key === 'offset')!.value);
    expect(smallOffset % 4096).to.equal(0);
    expect(statSync(saved.dataPath!).size).to.equal(smallOffset + 32 * 8 * 4);

    const input = rng.floats(64);
    const session = await createSession(modelPath);
    const out = await session.run({ x: new ort.Tensor('float32', input, [1, 64]) });
    await session.release();
    expectClose(floats(out.y), matmul(matmul(input, w1, 1, 64, 32), w2, 1, 32, 8), FP32_TOLERANCE);
  });
});
