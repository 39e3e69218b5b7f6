/**
 * Decides whether a tokenizer.json is a byte-level BPE the fast route reproduces exactly, and if so
 * compiles what the fast route needs. Every feature it does not implement yields a reason instead.
 */
import { LiteralMatcher, type AddedTokenRule } from './added-tokens.js';
import type { ByteLevelBpeModel } from './byte-level-bpe.js';
import { isJsonObject, type JsonObject, type LoadedTokenizer } from './load.js';
import { translateOnigurumaRegex, UnsupportedPatternError } from './oniguruma.js';

/** One pre-tokenizer step, applied to every piece the previous step produced. */
export type PreTokenizeStep =
  /** Matches and the text between them become pieces (Split with behavior "Isolated"). */
  | { kind: 'split'; pattern: RegExp }
  /** ByteLevel's add_prefix_space: a piece not starting with a space gets one. */
  | { kind: 'prefixSpace' };

export interface FastPlan {
  normalize: ((text: string) => string) | null;
  /** Added-token strings (contents and normalized contents) → rule, as the reference's added_tokens_map. */
  addedTokenRules: ReadonlyMap<string, AddedTokenRule>;
  /** Contents searched in the raw text. */
  rawMatcher: LiteralMatcher;
  /** Normalized contents searched in the normalized text. */
  normalizedMatcher: LiteralMatcher;
  preTokenizeSteps: PreTokenizeStep[];
  bpe: ByteLevelBpeModel;
}

export type FastPlanResult = { plan: FastPlan } | { unsupported: string };

class Unsupported extends Error {}

/** GPT-2's pre-tokenizer pattern, as ByteLevel applies it when use_regex is true (JS `\s`, as the reference). */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export function planFastRoute(tok: LoadedTokenizer): FastPlanResult {
  try {
    const { json, config } = tok;
    if (config.remove_space === true) throw new Unsupported('tokenizer_config remove_space is not supported by the fast route');
    if (config.do_lowercase_and_remove_accent === true) {
      throw new Unsupported('tokenizer_config do_lowercase_and_remove_accent is not supported by the fast route');
    }
    assertSupportedBpe(json.model);
    const normalize = planNormalizer(json.normalizer);
    const preTokenizeSteps = planPreTokenizer(json.pre_tokenizer);
    const added = planAddedTokens(tok, normalize);
    const bpe = planBpeModel(json.model, added.tokenIdOverrides, added.addedTokenIds);
    return { plan: { normalize, preTokenizeSteps, bpe, ...added.matching } };
  } catch (err) {
    if (err instanceof Unsupported) return { unsupported: err.message };
    if (err instanceof UnsupportedPatternError) return { unsupported: `pre-tokenizer pattern not supported by the fast route: ${err.message}` };
    throw err;
  }
}

function typeOf(component: JsonObject): string {
  return typeof component.type === 'string' ? component.type : '(untyped)';
}

function planNormalizer(normalizer: JsonObject | null): FastPlan['normalize'] {
  const forms = normalizer === null ? [] : flattenSequence(normalizer, 'normalizers');
  for (const form of forms) {
    if (typeOf(form) !== 'NFC') throw new Unsupported(`normalizer ${typeOf(form)} not supported by the fast route`);
  }
  if (normalizer === null) return null;
  // An empty Sequence still counts as a normalizer for added tokens marked normalized, as in the reference.
  return forms.length === 0 ? (text) => text : (text) => text.normalize('NFC');
}

/** A Sequence's members, nested Sequences flattened; any other component alone. */
function flattenSequence(component: JsonObject, membersKey: string): JsonObject[] {
  if (typeOf(component) !== 'Sequence') return [component];
  const members = component[membersKey];
  if (!Array.isArray(members)) throw new Unsupported(`Sequence without ${membersKey} not supported by the fast route`);
  return members.flatMap((member) => (isJsonObject(member) ? flattenSequence(member, membersKey) : []));
}

function planPreTokenizer(preTokenizer: JsonObject | null): PreTokenizeStep[] {
  if (preTokenizer === null) throw new Unsupported('a BPE without a ByteLevel pre-tokenizer is not supported by the fast route');
  const members = flattenSequence(preTokenizer, 'pretokenizers');
  const byteLevelIndex = members.findIndex((member) => typeOf(member) === 'ByteLevel');
  if (byteLevelIndex !== members.length - 1) {
    throw new Unsupported('the fast route needs exactly one ByteLevel pre-tokenizer, as the last one');
  }
  const steps = members.slice(0, -1).map(planSplit);
  return [...steps, ...planByteLevel(members[byteLevelIndex]!)];
}

function planSplit(member: JsonObject): PreTokenizeStep {
  const type = typeOf(member);
  if (type !== 'Split') throw new Unsupported(`pre-tokenizer ${type} not supported by the fast route`);
  if (member.invert === true) throw new Unsupported('Split with invert not supported by the fast route');
  if (member.behavior !== 'Isolated') {
    throw new Unsupported(`Split behavior ${String(member.behavior)} not supported by the fast route`);
  }
  const pattern = isJsonObject(member.pattern) ? member.pattern : {};
  if (typeof pattern.Regex === 'string') return { kind: 'split', pattern: new RegExp(translateOnigurumaRegex(pattern.Regex), 'gu') };
  if (typeof pattern.String === 'string') {
    return { kind: 'split', pattern: new RegExp(pattern.String.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'), 'gu') };
  }
  throw new Unsupported('Split without a Regex or String pattern not supported by the fast route');
}

function planByteLevel(byteLevel: JsonObject): PreTokenizeStep[] {
  const steps: PreTokenizeStep[] = [];
  if (byteLevel.add_prefix_space === true) steps.push({ kind: 'prefixSpace' });
  if (byteLevel.use_regex !== false) steps.push({ kind: 'split', pattern: new RegExp(GPT2_PATTERN, 'gu') });
  return steps;
}

interface AddedTokenPlan {
  matching: Pick<FastPlan, 'addedTokenRules' | 'rawMatcher' | 'normalizedMatcher'>;
  /** content → id, as the reference writes added tokens into the model's tokens_to_ids. */
  tokenIdOverrides: Map<string, number>;
  /** Added-token strings (contents and normalized contents) → id, as the reference's added_tokens_map. */
  addedTokenIds: Map<string, number>;
}

/** Mirrors how the reference files each added token: normalized ones are searched after normalization. */
function planAddedTokens(tok: LoadedTokenizer, normalize: FastPlan['normalize']): AddedTokenPlan {
  const rules = new Map<string, AddedTokenRule>();
  const rawContents: string[] = [];
  const normalizedContents: string[] = [];
  const tokenIdOverrides = new Map<string, number>();
  for (const token of tok.json.added_tokens) {
    if (token.single_word === true) {
      throw new Unsupported(`added token ${JSON.stringify(token.content)} has single_word, not supported by the fast route`);
    }
    const rule: AddedTokenRule = { id: token.id, lstrip: token.lstrip === true, rstrip: token.rstrip === true };
    const normalized = token.normalized ?? !(token.special ?? false);
    tokenIdOverrides.set(token.content, token.id);
    rules.set(token.content, rule);
    if (normalized && normalize !== null) {
      const normalizedContent = normalize(token.content);
      normalizedContents.push(normalizedContent);
      rules.set(normalizedContent, rule);
    } else {
      rawContents.push(token.content);
    }
  }
  const addedTokenIds = new Map([...rules].map(([text, rule]) => [text, rule.id]));
  return {
    matching: {
      addedTokenRules: rules,
      rawMatcher: new LiteralMatcher(rawContents),
      normalizedMatcher: new LiteralMatcher(normalizedContents),
    },
    tokenIdOverrides,
    addedTokenIds,
  };
}

function assertSupportedBpe(model: JsonObject): void {
  if (model.type !== 'BPE') throw new Unsupported(`model ${String(model.type ?? '(untyped)')} not supported by the fast route (BPE only)`);
  if (model.byte_fallback === true) throw new Unsupported('BPE byte_fallback not supported by the fast route');
  if (model.dropout !== null && model.dropout !== undefined) throw new Unsupported('BPE dropout not supported by the fast route');
  for (const key of ['continuing_subword_prefix', 'continuing_subword_suffix', 'end_of_word_suffix']) {
    if (typeof model[key] === 'string' && model[key] !== '') throw new Unsupported(`BPE ${key} not supported by the fast route`);
  }
  if (typeof model.unk_token === 'string' && model.fuse_unk === true) throw new Unsupported('BPE fuse_unk not supported by the fast route');
  if (!isJsonObject(model.vocab) || !Array.isArray(model.merges)) throw new Unsupported('BPE without vocab or merges');
}

function planBpeModel(model: JsonObject, tokenIdOverrides: Map<string, number>, addedTokenIds: Map<string, number>): ByteLevelBpeModel {
  const vocab = model.vocab as JsonObject;
  // The reference's tokens_to_ids decides what is a token; its added_tokens_map decides the id first.
  const tokenIds = new Map<string, number>();
  for (const [token, id] of Object.entries(vocab)) if (typeof id === 'number') tokenIds.set(token, id);
  for (const [content, id] of tokenIdOverrides) tokenIds.set(content, id);
  for (const [text, id] of addedTokenIds) if (tokenIds.has(text)) tokenIds.set(text, id);

  let unkId: number | undefined;
  if (typeof model.unk_token === 'string') {
    unkId = addedTokenIds.get(model.unk_token) ?? tokenIds.get(model.unk_token);
    if (unkId === undefined) throw new Unsupported('BPE unk_token missing from the vocabulary');
  }
  return { tokenIds, merges: mergePairsOf(model.merges as unknown[]), ignoreMerges: model.ignore_merges === true, unkId };
}

/** Merges are "left right" strings (split at the first space, as the reference does) or [left, right] pairs. */
function mergePairsOf(merges: unknown[]): Array<[string, string]> {
  return merges.map((merge) => {
    if (typeof merge === 'string') {
      const [left, right] = merge.split(' ', 2);
      if (right !== undefined) return [left!, right];
    } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
      return [merge[0], merge[1]];
    }
    throw new Unsupported(`unreadable BPE merge ${JSON.stringify(merge)} (fast route)`);
  });
}
