/**
 * `--methods vanilla,eagle2,fr-spec:32768,…` → method specs, checked against what the model folder
 * can run, with messages that say how to get what is missing.
 */
import { UserError } from '../util/errors.js';
import type { ModelInfo } from './model-info.js';
import type { MethodKind, MethodSpec } from './types.js';

const KINDS: readonly MethodKind[] = ['vanilla', 'sps', 'eagle2', 'fr-spec', 'ouroboros'];
const KNOWN = 'vanilla, eagle2, fr-spec:<size>, sps, ouroboros';

export interface MethodName {
  label: string;
  method: MethodKind;
  vocabSize?: number;
}

export function parseMethodList(text: string): MethodName[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError(`--methods: no method given; known methods: ${KNOWN}`);
  const parsed: MethodName[] = [];
  for (const name of names) {
    const method = parseMethodName(name);
    if (!parsed.some((m) => m.label === method.label)) parsed.push(method);
  }
  return parsed;
}

function parseMethodName(name: string): MethodName {
  const [kind, size, ...rest] = name.split(':');
  if (!(KINDS as readonly string[]).includes(kind) || rest.length > 0) throw new UserError(`unknown method "${name}"; known methods: ${KNOWN}`);
  const method = kind as MethodKind;
  if (method !== 'fr-spec') {
    if (size !== undefined) throw new UserError(`method "${name}": only fr-spec takes a size (fr-spec:<size>)`);
    return { label: method, method };
  }
  if (size === undefined) throw new UserError('method "fr-spec" needs its vocabulary size, e.g. fr-spec:32768');
  if (!/^\d+$/.test(size) || Number(size) < 1) throw new UserError(`method "${name}": the size must be a whole number ≥ 1`);
  const vocabSize = Number(size);
  return { label: `fr-spec:${vocabSize}`, method, vocabSize };
}

/** Checks each method against the model folder and attaches the vocabulary subset files. */
export function resolveMethods(names: readonly MethodName[], model: ModelInfo): MethodSpec[] {
  return names.map((name) => {
    if ((name.method === 'eagle2' || name.method === 'fr-spec') && !model.hasEagle) {
      throw new UserError(`${name.label} needs an EAGLE head, and ${model.dir} has none (export it with fr-spec export --eagle <hf-dir>)`);
    }
    if ((name.method === 'sps' || name.method === 'ouroboros') && !model.hasDraft) {
      throw new UserError(`${name.label} needs a draft model, and ${model.dir} has none (export it with fr-spec export --draft <hf-dir>)`);
    }
    if (name.method !== 'fr-spec') return { ...name };
    const vocabFile = model.vocabMaps.get(name.vocabSize!);
    if (!vocabFile) {
      const have = [...model.vocabMaps.keys()].sort((a, b) => a - b);
      throw new UserError(
        `${name.label}: no vocab map freq_${name.vocabSize}.json in ${model.dir}` +
          (have.length ? ` (it has ${have.join(', ')})` : ' (it has none)') +
          `; build one with fr-spec build-vocab --sizes ${name.vocabSize} and pass --vocab-maps <dir>, or export with --vocab-maps`,
      );
    }
    return { ...name, vocabFile };
  });
}

/** Every method the model folder can run: what `fr-spec bench` compares when --methods is not given. */
/** The paper's comparison: vanilla, eagle2 and fr-spec with the 32k subset (else the largest subset the model has). */
export function headlineMethodList(model: ModelInfo): string {
  if (!model.hasEagle) return 'vanilla';
  const sizes = [...model.vocabMaps.keys()].sort((a, b) => a - b);
  const size = sizes.includes(HEADLINE_SUBSET) ? HEADLINE_SUBSET : sizes.at(-1);
  return ['vanilla', 'eagle2', ...(size === undefined ? [] : [`fr-spec:${size}`])].join(',');
}

const HEADLINE_SUBSET = 32768;

export function defaultMethodList(model: ModelInfo): string {
  const methods = ['vanilla'];
  if (model.hasEagle) methods.push('eagle2', ...[...model.vocabMaps.keys()].sort((a, b) => a - b).map((size) => `fr-spec:${size}`));
  if (model.hasDraft) methods.push('sps', 'ouroboros');
  return methods.join(',');
}
