import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cudaProviderPath, loadOrt, ortPackageDir, resolveExecutionProvider } from '../../src/model/ort-runtime.js';
import { sessionOptions } from '../../src/model/session.js';
import { UserError } from '../../src/util/errors.js';

const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

describe('model/ort-runtime (execution providers)', () => {
  let root: string;
  /** A fake onnxruntime-node package folder, optionally with the CUDA provider library. */
  const fakePackage = (name: string, withCuda: boolean) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"name": "onnxruntime-node"}');
    if (withCuda) {
      mkdirSync(dirname(cudaProviderPath(dir)), { recursive: true });
      writeFileSync(cudaProviderPath(dir), '');
    }
    return dir;
  };

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fr-spec-ort-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('uses the project\'s onnxruntime-node unless FR_SPEC_ORT_DIR names another', () => {
    expect(ortPackageDir({})).to.match(/node_modules[/\\]onnxruntime-node$/);
    const other = fakePackage('elsewhere', false);
    expect(ortPackageDir({ FR_SPEC_ORT_DIR: other })).to.equal(other);
    expect(() => ortPackageDir({ FR_SPEC_ORT_DIR: root })).to.throw(UserError, /FR_SPEC_ORT_DIR=.* is not an onnxruntime-node package folder/);
  });

  it('cpu is always cpu; auto is cpu without the CUDA provider library', () => {
    const plain = fakePackage('plain', false);
    expect(resolveExecutionProvider('cpu', { FR_SPEC_ORT_DIR: plain })).to.equal('cpu');
    expect(resolveExecutionProvider('auto', { FR_SPEC_ORT_DIR: plain })).to.equal('cpu');
  });

  it('cuda without the provider library fails and says how to install it', () => {
    const plain = fakePackage('plain', false);
    const message = onLinuxX64 ? /CUDA execution provider is not installed \(no .*libonnxruntime_providers_cuda\.so\); run `npm run install-cuda`.*offline GPU kit.*FR_SPEC_ORT_DIR/ : /only for linux\/x64/;
    expect(() => resolveExecutionProvider('cuda', { FR_SPEC_ORT_DIR: plain })).to.throw(UserError, message);
  });

  (onLinuxX64 ? it : it.skip)('auto and cuda pick CUDA when the provider library is in the package\'s bin folder', () => {
    const withCuda = fakePackage('with-cuda', true);
    expect(resolveExecutionProvider('auto', { FR_SPEC_ORT_DIR: withCuda })).to.equal('cuda');
    expect(resolveExecutionProvider('cuda', { FR_SPEC_ORT_DIR: withCuda })).to.equal('cuda');
  });

  it('loads onnxruntime-node from FR_SPEC_ORT_DIR through createRequire', () => {
    const saved = process.env.FR_SPEC_ORT_DIR;
    process.env.FR_SPEC_ORT_DIR = ortPackageDir({});
    try {
      const ort = loadOrt();
      expect(ort.InferenceSession).to.be.a('function');
      expect(ort.env.versions.common).to.equal('1.29.0');
    } finally {
      if (saved === undefined) delete process.env.FR_SPEC_ORT_DIR;
      else process.env.FR_SPEC_ORT_DIR = saved;
    }
  });

  it('session options: CUDA gets the device, no spinning, and optionally no CPU fallback', () => {
    expect(sessionOptions('cuda', { deviceId: 1, strictDevice: true })).to.deep.include({
      executionProviders: [{ name: 'cuda', deviceId: 1 }],
      intraOpNumThreads: 1,
      extra: { session: { intra_op: { allow_spinning: '0' }, disable_cpu_ep_fallback: '1' } },
    });
    expect(sessionOptions('cpu', { threads: 2, strictDevice: true })).to.deep.include({ executionProviders: ['cpu'], intraOpNumThreads: 2, extra: { session: {} } });
  });

  it('session options: benchmark tuning turns memory patterns off and adds session entries', () => {
    const tuned = sessionOptions('cuda', { tuning: { memPattern: false, sessionEntries: { use_device_allocator_for_initializers: '1' } } });
    expect(tuned).to.deep.include({ enableMemPattern: false, extra: { session: { intra_op: { allow_spinning: '0' }, use_device_allocator_for_initializers: '1' } } });
    expect(sessionOptions('cuda', {})).to.not.have.property('enableMemPattern');
    expect(sessionOptions('cpu', { tuning: { memPattern: true } })).to.not.have.property('enableMemPattern');
  });
});
