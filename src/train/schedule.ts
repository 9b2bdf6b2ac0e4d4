/** The learning rate over a run: linear warm-up to `lr`, then a cosine decay to `minLr` at the last step. */

export interface LrSchedule {
  lr: number;
  /** Steps of linear warm-up from 0. */
  warmup: number;
  /** The run's last step (the cosine reaches minLr there). */
  steps: number;
  minLr: number;
}

/** The learning rate of step `step` (0-based). */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmup) return s.lr * (step + 1) / s.warmup;
  const span = Math.max(1, s.steps - s.warmup);
  const progress = Math.min(1, (step - s.warmup) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
