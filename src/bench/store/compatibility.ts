/** Whether an output folder's saved results may be resumed by a new invocation. */
import { isDeepStrictEqual } from 'node:util';
import { UserError } from '../../util/errors.js';
import type { BenchMeta, MeasuredSettings } from './records.js';

const short = (sha: string) => sha.slice(0, 12);

export function checkCompatible(dir: string, saved: BenchMeta, wanted: BenchMeta): void {
  const advice = 'use another --out, or the same settings to resume';
  if (saved.model.configSha256 !== wanted.model.configSha256) {
    throw new UserError(
      `${dir} holds results of another model (${saved.model.dir}, config.json sha256 ${short(saved.model.configSha256)}…; ` +
        `this one is ${short(wanted.model.configSha256)}…); use another --out`,
    );
  }
  const sameData = saved.dataset.sha256 === wanted.dataset.sha256 && saved.dataset.fewshot?.sha256 === wanted.dataset.fewshot?.sha256 && saved.dataset.fewshot?.shots === wanted.dataset.fewshot?.shots;
  if (!sameData) throw new UserError(`${dir} holds results for other questions (${saved.dataset.name}, ${saved.dataset.file}); ${advice}`);
  if (saved.device !== wanted.device) throw new UserError(`${dir} holds results measured on ${saved.device}, not ${wanted.device}; ${advice}`);
  const differences = settingDifferences(saved.settings, wanted.settings);
  if (differences.length > 0) throw new UserError(`${dir} holds results made with other settings (${differences.join('; ')}); ${advice}`);
}

function settingDifferences(saved: MeasuredSettings, wanted: MeasuredSettings): string[] {
  const out: string[] = [];
  if (saved.maxNewTokens !== wanted.maxNewTokens) out.push(`--max-new-tokens ${saved.maxNewTokens}, now ${wanted.maxNewTokens}`);
  if (saved.temperature !== wanted.temperature) out.push(`--temperature ${saved.temperature}, now ${wanted.temperature}`);
  // Greedy decoding never draws, so the seed only matters when sampling.
  const sampling = saved.temperature > 0 || wanted.temperature > 0;
  if (sampling && saved.seed !== wanted.seed) out.push(`--seed ${saved.seed}, now ${wanted.seed}`);
  if (!isDeepStrictEqual(saved.prompt, wanted.prompt)) out.push('another prompt style or system prompt');
  return out;
}
