/** The optimizer in plain TypeScript (f64): the global gradient norm with its clip scale, and AdamW steps. */

import type { AdamWConfig } from "./adamw.ts";

/** ‖g‖₂ over every buffer, and PyTorch's clip_grad_norm_ scale min(1, maxNorm / (‖g‖ + 1e-6)). */
export function referenceGradNorm(
  grads: ArrayLike<number>[],
  maxNorm: number,
): { norm: number; clip: number } {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  const norm = Math.sqrt(s);
  return { norm, clip: maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1 };
}

/** One AdamW step (t from 1) of p, m, v in place, as torch.optim.AdamW, gradients times `clip`. */
export function referenceAdamWStep(
  p: Float64Array,
  m: Float64Array,
  v: Float64Array,
  g: ArrayLike<number>,
  c: AdamWConfig & { lr: number; t: number; clip: number; decay: boolean },
): void {
  const bc1 = 1 - c.beta1 ** c.t, bc2 = 1 - c.beta2 ** c.t;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * c.clip;
    m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
    if (c.decay) p[i] *= 1 - c.lr * c.weightDecay;
    p[i] -= (c.lr / bc1) * m[i] / (Math.sqrt(v[i] / bc2) + c.eps);
  }
}
