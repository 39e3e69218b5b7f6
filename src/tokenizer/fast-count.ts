/**
 * Token frequency counting. The fast route pre-tokenizes with V8 regexes and runs BPE once per
 * distinct piece: a document then costs one Map lookup and one increment per piece. Counts stay
 * identical to the reference tokenizer's (`tok.encode`).
 */
import { visitSections } from './added-tokens.js';
import { ByteLevelBpe } from './byte-level-bpe.js';
import { planFastRoute, type FastPlan } from './fast-plan.js';
import type { LoadedTokenizer } from './load.js';
import type { TokenCounter } from './types.js';
import { UserError } from '../util/errors.js';

export interface TokenCounterOptions {
  /** 'auto' (default) takes the fast route when it reproduces this tokenizer exactly. */
  route?: 'auto' | 'fast' | 'reference';
  /** Distinct pieces kept before the piece cache is flushed and cleared (V8 Maps stop at 2^24 entries). */
  maxCachedPieces?: number;
}

/** About 100 MB of cache at most; a billion bytes of text has a few million distinct pieces. */
const DEFAULT_MAX_CACHED_PIECES = 1 << 20;

/** Creates a counter; `reason` says why 'auto' fell back to the reference route. */
export function createTokenCounter(
  tok: LoadedTokenizer,
  opts: TokenCounterOptions = {},
): { counter: TokenCounter; reason?: string } {
  const route = opts.route ?? 'auto';
  if (route === 'reference') return { counter: new ReferenceTokenCounter(tok) };
  const planned = planFastRoute(tok);
  if ('unsupported' in planned) {
    if (route === 'fast') throw new UserError(`tokenizer ${tok.info.name}: ${planned.unsupported}`);
    return { counter: new ReferenceTokenCounter(tok), reason: planned.unsupported };
  }
  const counter = new FastTokenCounter(planned.plan, tok.info.vocabSize, opts.maxCachedPieces ?? DEFAULT_MAX_CACHED_PIECES);
  if (route === 'auto') {
    const mismatch = findProbeMismatch(tok, counter);
    if (mismatch !== null) return { counter: new ReferenceTokenCounter(tok), reason: mismatch };
  }
  return { counter };
}

class ReferenceTokenCounter implements TokenCounter {
  readonly route = 'reference';
  readonly counts: Float64Array;

  constructor(private readonly tok: LoadedTokenizer) {
    this.counts = new Float64Array(tok.info.vocabSize);
  }

  add(text: string): number {
    const ids = this.tok.encode(text);
    for (const id of ids) this.counts[id]!++;
    return ids.length;
  }

  flush(): void {}
}

/**
 * Each distinct piece gets a slot: its token ids (in a shared pool) and the occurrences not yet
 * added to `counts`. flush() moves those pending occurrences into `counts`.
 */
class FastTokenCounter implements TokenCounter {
  readonly route = 'fast';
  readonly counts: Float64Array;
  private readonly bpe: ByteLevelBpe;
  private readonly slotOfPiece = new Map<string, number>();
  private slotCapacity = 1 << 12;
  private pending = new Float64Array(this.slotCapacity);
  private tokenCountOfSlot = new Int32Array(this.slotCapacity);
  private firstIdOfSlot = new Int32Array(this.slotCapacity);
  private idPool = new Int32Array(1 << 14);
  private idPoolLength = 0;
  /** Slots whose pending count went above zero since the last flush. */
  private dirtySlots = new Int32Array(this.slotCapacity);
  private dirtyCount = 0;
  private documentTokens = 0;

  constructor(
    private readonly plan: FastPlan,
    vocabSize: number,
    private readonly maxCachedPieces: number,
  ) {
    this.counts = new Float64Array(vocabSize);
    this.bpe = new ByteLevelBpe(plan.bpe);
  }

  add(text: string): number {
    this.documentTokens = 0;
    visitSections(text, this.plan.rawMatcher, this.plan.addedTokenRules, this.countAddedToken, this.countRawSection);
    return this.documentTokens;
  }

  flush(): void {
    const { counts, pending, idPool, firstIdOfSlot, tokenCountOfSlot, dirtySlots } = this;
    for (let d = 0; d < this.dirtyCount; d++) {
      const slot = dirtySlots[d]!;
      const occurrences = pending[slot]!;
      const first = firstIdOfSlot[slot]!;
      const end = first + tokenCountOfSlot[slot]!;
      for (let k = first; k < end; k++) counts[idPool[k]!]! += occurrences;
      pending[slot] = 0;
    }
    this.dirtyCount = 0;
  }

  /** Forgets everything counted so far (used after the self-check). */
  reset(): void {
    this.flush();
    this.counts.fill(0);
  }

  private readonly countAddedToken = (id: number): void => {
    this.counts[id]!++;
    this.documentTokens++;
  };

  private readonly countRawSection = (section: string): void => {
    const normalized = this.plan.normalize === null ? section : this.plan.normalize(section);
    if (normalized.length === 0) return;
    if (this.plan.normalizedMatcher.isEmpty && !this.plan.addedTokenRules.has(normalized)) {
      this.documentTokens += this.countPieces(normalized, 0);
      return;
    }
    visitSections(normalized, this.plan.normalizedMatcher, this.plan.addedTokenRules, this.countAddedToken, this.countNormalizedText);
  };

  private readonly countNormalizedText = (text: string): void => {
    this.documentTokens += this.countPieces(text, 0);
  };

  /** Runs pre-tokenizer steps `step…` over the text and counts the resulting pieces; returns their token count. */
  private countPieces(text: string, step: number): number {
    const steps = this.plan.preTokenizeSteps;
    if (step === steps.length) return this.countPiece(text);
    const current = steps[step]!;
    if (current.kind === 'prefixSpace') return this.countPieces(text.startsWith(' ') ? text : ' ' + text, step + 1);

    const pattern = current.pattern;
    let tokens = 0;
    let gapStart = 0;
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const piece = match[0];
      if (match.index > gapStart) tokens += this.countPieces(text.slice(gapStart, match.index), step + 1);
      if (piece.length > 0) tokens += this.countPieces(piece, step + 1);
      else pattern.lastIndex = nextCodePointIndex(text, pattern.lastIndex);
      gapStart = match.index + piece.length;
    }
    if (gapStart < text.length) tokens += this.countPieces(text.slice(gapStart), step + 1);
    return tokens;
  }

  private countPiece(piece: string): number {
    let slot = this.slotOfPiece.get(piece);
    if (slot === undefined) slot = this.learnPiece(piece);
    if (this.pending[slot]!++ === 0) this.dirtySlots[this.dirtyCount++] = slot;
    return this.tokenCountOfSlot[slot]!;
  }

  private learnPiece(piece: string): number {
    if (this.slotOfPiece.size >= this.maxCachedPieces) this.clearPieceCache();
    const slot = this.slotOfPiece.size;
    if (slot === this.slotCapacity) this.growSlots();
    const ids = this.bpe.encode(piece);
    this.reserveIdPool(ids.length);
    this.idPool.set(ids, this.idPoolLength);
    this.firstIdOfSlot[slot] = this.idPoolLength;
    this.tokenCountOfSlot[slot] = ids.length;
    this.idPoolLength += ids.length;
    this.slotOfPiece.set(piece, slot);
    return slot;
  }

  private clearPieceCache(): void {
    this.flush();
    this.slotOfPiece.clear();
    this.idPoolLength = 0;
  }

  private growSlots(): void {
    this.slotCapacity *= 2;
    this.pending = grown(this.pending, this.slotCapacity);
    this.tokenCountOfSlot = grown(this.tokenCountOfSlot, this.slotCapacity);
    this.firstIdOfSlot = grown(this.firstIdOfSlot, this.slotCapacity);
    this.dirtySlots = grown(this.dirtySlots, this.slotCapacity);
  }

  private reserveIdPool(extra: number): void {
    if (this.idPoolLength + extra <= this.idPool.length) return;
    this.idPool = grown(this.idPool, Math.max(this.idPool.length * 2, this.idPoolLength + extra));
  }
}

function grown<T extends Float64Array | Int32Array>(array: T, length: number): T {
  const larger = new (array.constructor as new (length: number) => T)(length);
  larger.set(array);
  return larger;
}

/** Where a global `u` regex resumes after an empty match: past one code point. */
function nextCodePointIndex(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code >= 0xd800 && code <= 0xdbff && index + 1 < text.length ? index + 2 : index + 1;
}

/** Short texts that exercise what differs between tokenizers: scripts, spacing, digits, special tokens. */
const PROBE_TEXTS = [
  "Hello world! It's 2024: don't WORRY, we'LL see 'S 'Ve.\n\n  def f(x):\r\n\treturn x**2  # ok\n",
  'Ünïcödé cafe\u0301 naïve — Привет мир, Γειά σου, مرحبا, שלום, नमस्ते, สวัสดี, 你好世界, 안녕하세요, こんにちは。',
  '👋🏽 👨‍👩‍👧‍👦 🇫🇷  1234567890 3.14159 \u00a0\u200b\ufffd   \t\t\n\n\n',
  '<|endoftext|>x<|im_end|> <|eot_id|>\n<|end_of_text|><s></s><unk>[CLS]<pad> <think>a</think>',
];

/** Counts the probe texts on both routes; returns why they differ, or null. Leaves the fast counter empty. */
function findProbeMismatch(tok: LoadedTokenizer, fast: FastTokenCounter): string | null {
  const reference = new ReferenceTokenCounter(tok);
  try {
    for (const text of PROBE_TEXTS) {
      if (fast.add(text) !== reference.add(text)) return `the fast route disagreed with the reference on ${JSON.stringify(text.slice(0, 40))}`;
    }
    fast.flush();
    const differs = fast.counts.some((count, id) => count !== reference.counts[id]);
    return differs ? 'the fast route disagreed with the reference on the probe texts' : null;
  } finally {
    fast.reset();
  }
}
