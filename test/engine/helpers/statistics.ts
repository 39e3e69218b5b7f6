/**
 * Goodness-of-fit for the sampling tests: Pearson's chi-square of observed counts against exact
 * probabilities, with sparse cells pooled so every expected count is at least 5.
 */

export interface ChiSquare {
  statistic: number;
  degreesOfFreedom: number;
  /** The statistic's critical value at the test's significance level. */
  critical: number;
  /** Total variation distance between the empirical and exact distributions. */
  totalVariation: number;
}

/** Upper quantile of chi-square (Wilson–Hilferty), accurate to a few percent for df ≥ 3. */
export function chiSquareQuantile(df: number, zScore: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + zScore * Math.sqrt(a)) ** 3;
}

/** z for the upper tail probability 1e-4. */
export const Z_1E4 = 3.719;

export function chiSquare(observed: ReadonlyMap<string, number>, expected: ReadonlyMap<string, number>, samples: number, zScore = Z_1E4): ChiSquare {
  for (const key of observed.keys()) if (!expected.has(key)) throw new Error(`observed outcome ${key} has probability 0`);
  const cells = [...expected.entries()].map(([key, p]) => ({ e: p * samples, o: observed.get(key) ?? 0 })).sort((x, y) => x.e - y.e);
  let statistic = 0;
  let bins = 0;
  let pooled = { e: 0, o: 0 };
  for (const cell of cells) {
    if (cell.e >= 5) {
      statistic += (cell.o - cell.e) ** 2 / cell.e;
      bins++;
    } else {
      pooled = { e: pooled.e + cell.e, o: pooled.o + cell.o };
    }
  }
  if (pooled.e > 0) {
    statistic += (pooled.o - pooled.e) ** 2 / pooled.e;
    bins++;
  }
  let totalVariation = 0;
  for (const [key, p] of expected) totalVariation += Math.abs((observed.get(key) ?? 0) / samples - p);
  const degreesOfFreedom = Math.max(1, bins - 1);
  return { statistic, degreesOfFreedom, critical: chiSquareQuantile(degreesOfFreedom, zScore), totalVariation: totalVariation / 2 };
}

export function countOutcomes(outcomes: Iterable<readonly number[]>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) {
    const key = outcome.join(',');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
