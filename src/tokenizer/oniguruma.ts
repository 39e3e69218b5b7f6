/**
 * Translates the Oniguruma patterns of tokenizer.json pre-tokenizers into JavaScript (`u` flag) patterns,
 * with the same meaning @huggingface/tokenizers gives them. Only a well-understood subset is translated;
 * anything else throws UnsupportedPatternError so callers can fall back to the reference tokenizer.
 */

export class UnsupportedPatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedPatternError';
  }
}

/** Characters that JS `u`-mode patterns let (and sometimes require) a backslash to escape. */
const JS_SYNTAX_CHARACTERS = '^$\\.*+?()[]{}|/';

/** Class escapes, rewritten as the reference does (JS `\s` would add U+FEFF and miss U+0085). */
const SHORTHAND_CLASSES: Record<string, string> = {
  s: '\\p{White_Space}',
  S: '\\P{White_Space}',
  d: '\\p{Nd}',
  D: '\\P{Nd}',
};

const CONTROL_ESCAPES = new Set(['r', 'n', 't', 'f', 'v']);

interface Cursor {
  source: string;
  index: number;
  inClass: boolean;
  /** For each open group: whether it (or an enclosing group) is case-insensitive `(?i:…)`. */
  caseInsensitive: boolean[];
}

/** Returns the JS source for an Oniguruma pattern; compile it with the flags 'gu'. */
export function translateOnigurumaRegex(source: string): string {
  const cursor: Cursor = { source, index: 0, inClass: false, caseInsensitive: [] };
  let out = '';
  while (cursor.index < source.length) {
    out += cursor.inClass ? translateInClass(cursor) : translateOutsideClass(cursor);
  }
  if (cursor.inClass || cursor.caseInsensitive.length > 0) {
    throw new UnsupportedPatternError(`unbalanced pattern ${JSON.stringify(source)}`);
  }
  try {
    new RegExp(out, 'gu');
  } catch (err) {
    throw new UnsupportedPatternError(`pattern ${JSON.stringify(source)} does not compile as JS: ${(err as Error).message}`);
  }
  return out;
}

function isCaseInsensitive(cursor: Cursor): boolean {
  return cursor.caseInsensitive.at(-1) ?? false;
}

function hasCaseVariants(char: string): boolean {
  return char.toLowerCase() !== char.toUpperCase();
}

function translateOutsideClass(cursor: Cursor): string {
  const { source } = cursor;
  const char = source[cursor.index]!;
  switch (char) {
    case '\\':
      return translateEscape(cursor);
    case '[':
      return openClass(cursor);
    case '(':
      return openGroup(cursor);
    case ')':
      if (cursor.caseInsensitive.length === 0) throw new UnsupportedPatternError(`unbalanced ")" in ${JSON.stringify(source)}`);
      cursor.caseInsensitive.pop();
      cursor.index += 1;
      return ')';
    case '.':
    case '^':
    case '$':
      // Oniguruma's line semantics for these differ from JS.
      throw new UnsupportedPatternError(`"${char}" in pattern ${JSON.stringify(source)}`);
    default: {
      const literal = String.fromCodePoint(source.codePointAt(cursor.index)!);
      cursor.index += literal.length;
      if (!isCaseInsensitive(cursor) || !hasCaseVariants(literal)) return literal;
      if (!/^[A-Za-z]$/.test(literal)) {
        throw new UnsupportedPatternError(`case-insensitive non-ASCII letter in ${JSON.stringify(source)}`);
      }
      return `[${literal.toLowerCase()}${literal.toUpperCase()}]`;
    }
  }
}

function openClass(cursor: Cursor): string {
  const { source } = cursor;
  if (isCaseInsensitive(cursor)) throw new UnsupportedPatternError(`character class inside (?i:…) in ${JSON.stringify(source)}`);
  const negated = source[cursor.index + 1] === '^';
  const prefixLength = negated ? 2 : 1;
  if (source[cursor.index + prefixLength] === ']') {
    throw new UnsupportedPatternError(`class starting with "]" in ${JSON.stringify(source)}`);
  }
  cursor.inClass = true;
  cursor.index += prefixLength;
  return negated ? '[^' : '[';
}

function openGroup(cursor: Cursor): string {
  const { source } = cursor;
  const rest = source.slice(cursor.index);
  const enclosing = isCaseInsensitive(cursor);
  if (rest.startsWith('(?i:')) {
    cursor.caseInsensitive.push(true);
    cursor.index += 4;
    return '(?:';
  }
  const prefix = /^\((?:\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>))?/.exec(rest)![0];
  if (rest.startsWith('(?') && prefix === '(') {
    throw new UnsupportedPatternError(`group ${JSON.stringify(rest.slice(0, 4))} in ${JSON.stringify(source)}`);
  }
  cursor.caseInsensitive.push(enclosing);
  cursor.index += prefix.length;
  return prefix;
}

function translateInClass(cursor: Cursor): string {
  const { source } = cursor;
  const char = source[cursor.index]!;
  if (char === '\\') return translateEscape(cursor);
  if (char === ']') {
    cursor.inClass = false;
    cursor.index += 1;
    return ']';
  }
  if (char === '[' || source.startsWith('&&', cursor.index)) {
    throw new UnsupportedPatternError(`nested class or class intersection in ${JSON.stringify(source)}`);
  }
  const literal = String.fromCodePoint(source.codePointAt(cursor.index)!);
  cursor.index += literal.length;
  return literal;
}

function translateEscape(cursor: Cursor): string {
  const { source } = cursor;
  const rest = source.slice(cursor.index);
  const property = /^\\([pP])\{([^}]*)\}/.exec(rest);
  if (property) {
    if (isCaseInsensitive(cursor)) throw new UnsupportedPatternError(`\\p{…} inside (?i:…) in ${JSON.stringify(source)}`);
    cursor.index += property[0].length;
    return `\\${property[1]}{${jsPropertyName(property[2]!, source)}}`;
  }
  const hex = /^\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4})/.exec(rest);
  if (hex) {
    cursor.index += hex[0].length;
    return hex[0];
  }
  const bracedHex = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(rest);
  if (bracedHex) {
    cursor.index += bracedHex[0].length;
    return `\\u{${bracedHex[1]}}`;
  }
  const escaped = rest[1];
  if (escaped === undefined) throw new UnsupportedPatternError(`pattern ${JSON.stringify(source)} ends with a backslash`);
  cursor.index += 2;
  if (SHORTHAND_CLASSES[escaped] !== undefined) return SHORTHAND_CLASSES[escaped];
  if (CONTROL_ESCAPES.has(escaped)) return `\\${escaped}`;
  if (/[A-Za-z0-9]/.test(escaped)) {
    throw new UnsupportedPatternError(`escape \\${escaped} in ${JSON.stringify(source)}`);
  }
  if (JS_SYNTAX_CHARACTERS.includes(escaped) || (cursor.inClass && escaped === '-')) return `\\${escaped}`;
  // An escaped surrogate pair is one literal code point.
  const literal = String.fromCodePoint(source.codePointAt(cursor.index - 1)!);
  cursor.index += literal.length - 1;
  return literal;
}

/** A Unicode property as JS names it: Oniguruma also accepts bare script names (\p{Han}), JS wants Script=Han. */
function jsPropertyName(name: string, source: string): string {
  for (const candidate of [name, `Script=${name}`]) {
    try {
      new RegExp(`\\p{${candidate}}`, 'u');
      return candidate;
    } catch {
      // try the next spelling
    }
  }
  throw new UnsupportedPatternError(`Unicode property ${name} in ${JSON.stringify(source)}`);
}
