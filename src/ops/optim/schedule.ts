/** The learning rate per optimizer step, computed on the host: linear warm-up, then cosine decay to a floor. */

export interface LrSchedule {
  /** Learning rate at the end of warm-up. */
  peak: number;
  /** Steps of linear warm-up (the rate at step t ≤ warmup is peak · t / warmup). */
  warmup: number;
  /** Steps in all: the cosine reaches `min` there and stays. */
  total: number;
  /** The floor (default 0). */
  min?: number;
}

/** The rate of step t (1 for the first). */
export function learningRate(t: number, s: LrSchedule): number {
  const min = s.min ?? 0;
  if (s.warmup > 0 && t <= s.warmup) return s.peak * t / s.warmup;
  const span = Math.max(1, s.total - s.warmup);
  const progress = Math.min(1, Math.max(0, (t - s.warmup) / span));
  return min + (s.peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
