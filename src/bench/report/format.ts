/** How numbers read in the terminal and Markdown tables (CSV and JSON keep full precision). */
export const formatSpeed = (v: number) => v.toFixed(2);
export const formatTau = (v: number | null) => (v === null ? '–' : v.toFixed(2));
export const formatSpeedup = (v: number | null) => (v === null ? '–' : `${v.toFixed(2)}x`);
export const formatCount = (v: number) => (Number.isInteger(v) ? v : Math.round(v)).toLocaleString('en-US');
export const formatEqual = (v: boolean | null) => (v === null ? '–' : v ? 'yes' : 'NO');

/** Rounds for machine-readable outputs without float noise (0.30000000000000004). */
export const round = (v: number, digits = 6) => Number(v.toFixed(digits));
