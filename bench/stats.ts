/** Order statistics of the benches' repeated timings. */

/** The f-quantile of xs (0 ≤ f ≤ 1), interpolated between neighbours; f = 0.5 is the median. NaN when empty. */
export function quantile(xs: number[], f: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const at = f * (s.length - 1), lo = Math.floor(at);
  return lo + 1 < s.length ? s[lo] + (s[lo + 1] - s[lo]) * (at - lo) : s[lo];
}

export const median = (xs: number[]): number => quantile(xs, 0.5);
