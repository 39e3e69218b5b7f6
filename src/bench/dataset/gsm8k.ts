/**
 * GSM8K's 8-shot chain-of-thought prompt, as FR-Spec runs it: plain text, no chat template,
 * "Q: …\nA: … The answer is N.\n\n" per exemplar, then "Q: {question}\nA:". The project ships no
 * exemplars: they are cut at run time from reference solutions in the user's own GSM8K file.
 */
import { UserError } from '../../util/errors.js';
import { gsm8kItem, questionBlock, type Gsm8kItem } from './formats.js';
import type { JsonlRecord } from './jsonl.js';

/** A reference solution as one chain-of-thought answer ending in "The answer is N." */
export function exemplarAnswer(solution: string): string {
  const marker = solution.lastIndexOf('####');
  if (marker < 0) throw new Error('a GSM8K solution ends with "#### <answer>"');
  const steps = solution
    .slice(0, marker)
    .replace(/<<[^>]*>>/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => (/[.!?:]$/.test(line) ? line : `${line}.`));
  const answer = solution.slice(marker + 4).trim().replace(/,/g, '');
  return [...steps, `The answer is ${answer}.`].join(' ');
}

export function fewShotPrefix(exemplars: readonly Required<Gsm8kItem>[]): string {
  return exemplars.map((e) => `${questionBlock(e.question)} ${exemplarAnswer(e.solution)}\n\n`).join('');
}

/** The first `shots` records as exemplars; each must carry a reference solution with "####". */
export function exemplarsFrom(records: readonly JsonlRecord[], shots: number, file: string): Required<Gsm8kItem>[] {
  if (records.length < shots) throw new UserError(`${file}: ${shots} few-shot exemplars wanted but the file has ${records.length} questions`);
  return records.slice(0, shots).map((record) => {
    const item = gsm8kItem(record, file);
    if (!item.solution || !item.solution.includes('####')) {
      throw new UserError(`${file}:${record.line}: a few-shot exemplar needs a reference solution ending in "#### <answer>" ("answer", or "reference" in EAGLE's copy)`);
    }
    return { question: item.question, solution: item.solution };
  });
}
