/** Cross-entropy over softmax in plain TypeScript (f64): per-row losses, the mean, and dlogits. */

/** The target that marks a row that does not count. */
export const IGNORE_TARGET = 0xffffffff;

export interface CrossEntropyResult {
  /** Per row (0 for rows that do not count). */
  losses: Float64Array;
  /** (softmax − onehot) · scale per counted row, zeros elsewhere. */
  dlogits: Float64Array;
  /** Mean over counted rows (0 when none). */
  mean: number;
  counted: number;
}

export function referenceCrossEntropy(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  vocab: number,
  scale: number,
): CrossEntropyResult {
  const rows = targets.length;
  const losses = new Float64Array(rows), dlogits = new Float64Array(rows * vocab);
  let sum = 0, counted = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === IGNORE_TARGET || t >= vocab) continue;
    const o = r * vocab;
    let m = -Infinity;
    for (let i = 0; i < vocab; i++) m = Math.max(m, logits[o + i]);
    let s = 0;
    for (let i = 0; i < vocab; i++) s += Math.exp(logits[o + i] - m);
    losses[r] = m + Math.log(s) - logits[o + t];
    for (let i = 0; i < vocab; i++) {
      dlogits[o + i] = (Math.exp(logits[o + i] - m) / s - (i === t ? 1 : 0)) * scale;
    }
    sum += losses[r];
    counted++;
  }
  return { losses, dlogits, mean: counted ? sum / counted : 0, counted };
}
