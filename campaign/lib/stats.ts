/** The q-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** `n` with `digits` decimals, or "-" for NaN. */
export function fmt(n: number, digits = 1): string {
  return Number.isNaN(n) ? "-" : n.toFixed(digits);
}
