/** Human-readable lines for `generate --stats`. */
import type { GenerationStats } from './stats.js';
import { formatBytes } from '../util/format.js';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function formatStats(stats: GenerationStats, stopReason: string): string[] {
  const ms = stats.milliseconds;
  return [
    `${stats.method}: ${stats.newTokens} new tokens after a ${stats.promptTokens}-token prompt in ${seconds(ms.total)} (${stats.tokensPerSecond.toFixed(1)} tokens/s), stopped by ${stopReason}`,
    `mean acceptance length τ ${stats.meanAcceptanceLength.toFixed(2)} over ${stats.cycles} cycles (tokens per target forward, bonus included)`,
    `forwards: target ${stats.targetForwards}, draft ${stats.draftForwards}, draft LM head ${stats.headRuns}${stats.logitsRuns > 0 ? `, sampling logits ${stats.logitsRuns}` : ''}`,
    `time: draft ${seconds(ms.draft)}, verify ${seconds(ms.verify)}, host ${seconds(ms.host)}`,
    `moved between host and execution provider: ${formatBytes(stats.bytesMoved)} (${formatBytes(stats.bytesPerToken)} per token)`,
  ];
}
