/** A table as cells, rendered as aligned plain text or as a Markdown table. */
export interface Table {
  header: string[];
  rows: string[][];
  /** Per column: right-aligned (numbers) or left-aligned. Default: the first column left, the rest right. */
  align?: ('left' | 'right')[];
}

const alignOf = (table: Table, column: number) => table.align?.[column] ?? (column === 0 ? 'left' : 'right');

export function renderText(table: Table): string {
  const widths = table.header.map((h, c) => Math.max(h.length, ...table.rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (alignOf(table, c) === 'right' ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(table.header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n') + '\n';
}

const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(table: Table): string {
  const row = (cells: string[]) => `| ${cells.map(escapeCell).join(' | ')} |`;
  const rule = table.header.map((_, c) => (alignOf(table, c) === 'right' ? '---:' : '---'));
  return [row(table.header), `|${rule.join('|')}|`, ...table.rows.map(row)].join('\n') + '\n';
}
