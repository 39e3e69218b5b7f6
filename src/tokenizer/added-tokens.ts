/**
 * Splits text around added tokens the way @huggingface/tokenizers does: at each position the longest
 * added-token content wins, scanning left to right; lstrip/rstrip tokens trim the whitespace of their
 * neighbouring sections.
 */

export interface AddedTokenRule {
  id: number;
  lstrip: boolean;
  rstrip: boolean;
}

interface TrieNode {
  children: Map<string, TrieNode>;
  /** The content that ends at this node, if any. */
  content?: string;
}

/** Finds the literal contents in a text: a trie walk, tried only at characters that start some content. */
export class LiteralMatcher {
  private readonly root: TrieNode = { children: new Map() };
  private readonly startChars: string[];
  private readonly startCharPattern: RegExp | null;

  constructor(contents: Iterable<string>) {
    const starts = new Set<string>();
    for (const content of contents) {
      if (content.length === 0) continue; // never matches in the reference either
      this.insert(content);
      starts.add(content[0]!);
    }
    this.startChars = [...starts];
    this.startCharPattern =
      this.startChars.length > 1
        ? new RegExp(`[${this.startChars.map((char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`, 'g')
        : null;
  }

  get isEmpty(): boolean {
    return this.startChars.length === 0;
  }

  /** The text cut into sections, matched contents being sections of their own; null when nothing matches. */
  split(text: string): string[] | null {
    let sections: string[] | null = null;
    let sectionStart = 0;
    let position = this.nextCandidate(text, 0);
    while (position >= 0) {
      const match = this.longestMatchAt(text, position);
      if (match === undefined) {
        position = this.nextCandidate(text, position + 1);
        continue;
      }
      sections ??= [];
      if (position > sectionStart) sections.push(text.slice(sectionStart, position));
      sections.push(match);
      sectionStart = position + match.length;
      position = this.nextCandidate(text, sectionStart);
    }
    if (sections !== null && sectionStart < text.length) sections.push(text.slice(sectionStart));
    return sections;
  }

  private insert(content: string): void {
    let node = this.root;
    for (let i = 0; i < content.length; i++) {
      const char = content[i]!;
      let child = node.children.get(char);
      if (!child) node.children.set(char, (child = { children: new Map() }));
      node = child;
    }
    node.content = content;
  }

  private nextCandidate(text: string, from: number): number {
    if (this.startChars.length === 0 || from >= text.length) return -1;
    if (this.startCharPattern === null) return text.indexOf(this.startChars[0]!, from);
    this.startCharPattern.lastIndex = from;
    const found = this.startCharPattern.exec(text);
    return found === null ? -1 : found.index;
  }

  private longestMatchAt(text: string, position: number): string | undefined {
    let node: TrieNode | undefined = this.root;
    let match: string | undefined;
    for (let i = position; i < text.length; i++) {
      node = node.children.get(text[i]!);
      if (node === undefined) break;
      if (node.content !== undefined) match = node.content;
    }
    return match;
  }
}

/**
 * Cuts text around added tokens and reports each piece in order: `onToken(id)` for an added token,
 * `onText(text)` for the non-empty text between them.
 */
export function visitSections(
  text: string,
  matcher: LiteralMatcher,
  rules: ReadonlyMap<string, AddedTokenRule>,
  onToken: (id: number) => void,
  onText: (text: string) => void,
): void {
  const sections = matcher.split(text) ?? [text];
  if (sections.length > 1) applyStripRules(sections, rules);
  for (const section of sections) {
    if (section.length === 0) continue;
    const rule = rules.get(section);
    if (rule !== undefined) onToken(rule.id);
    else onText(section);
  }
}

/** lstrip/rstrip tokens trim their neighbours in place, in the reference's order. */
function applyStripRules(sections: string[], rules: ReadonlyMap<string, AddedTokenRule>): void {
  for (let i = 0; i < sections.length; i++) {
    const rule = rules.get(sections[i]!);
    if (rule === undefined) continue;
    if (rule.lstrip && i > 0) sections[i - 1] = sections[i - 1]!.trimEnd();
    if (rule.rstrip && i < sections.length - 1) sections[i + 1] = sections[i + 1]!.trimStart();
  }
}
