/** The FlexiDepth router in plain TypeScript, as the spec writes it (unfused, every stage a matvec). */

import { type DType, roundTo } from "../../model/dtype.ts";
import { referenceMatvec } from "../matmul/reference.ts";
import { referenceRmsNorm } from "../norm/reference.ts";

export interface RouterValues {
  /** W_enc [bottleneck, hidden]. */
  enc: Float32Array;
  /** router_norm [bottleneck]. */
  norm: Float32Array;
  /** W_dec [hidden, bottleneck]. */
  dec: Float32Array;
  /** W_head [1, hidden]. */
  head: Float32Array;
  bottleneck: number;
}

/** g = sigmoid(W_head · W_dec · tanh(RMSNorm_r(W_enc · z))) for z = input_layernorm(x), rounded to `dtype`. */
export function referenceGate(R: RouterValues, z: Float32Array, eps: number, dtype: DType): number {
  const H = z.length;
  const e = referenceMatvec(R.enc, z, R.bottleneck, H);
  const t = referenceRmsNorm(e, 1, R.bottleneck, R.norm, eps).map(Math.tanh);
  const d = referenceMatvec(R.dec, t, H, R.bottleneck);
  const logit = referenceMatvec(R.head, d, 1, H)[0];
  return roundTo(dtype, 1 / (1 + Math.exp(-logit)));
}

/**
 * FlexiDepth's skip loss over gates [layers, n] (routed layer l's at l · n): L_skip = (1/n) Σ_t s_t² with
 * s_t = Σ_l g_t^l (f64), and its gradient ∂L_skip/∂g_t^l = 2 s_t / n.
 */
export function referenceSkipLoss(
  g: ArrayLike<number>,
  layers: number,
  n: number,
): { loss: number; grad: Float64Array } {
  const grad = new Float64Array(layers * n);
  let loss = 0;
  for (let t = 0; t < n; t++) {
    let s = 0;
    for (let l = 0; l < layers; l++) s += g[l * n + t];
    loss += s * s;
    for (let l = 0; l < layers; l++) grad[l * n + t] = 2 * s / n;
  }
  return { loss: loss / n, grad };
}

/**
 * The training gate of one routed layer (kernels/route_gate_train.wgsl): g = sigmoid(logit), the route
 * m = g > threshold (strict) and the branch scales sm = m·g, sa = (1 − m)(1 − g).
 */
export function referenceRouteGate(logit: ArrayLike<number>, threshold: number) {
  const g = Float64Array.from(logit, (x) => 1 / (1 + Math.exp(-x)));
  const m = g.map((v) => (v > threshold ? 1 : 0));
  return { g, m, sm: g.map((v, t) => m[t] * v), sa: g.map((v, t) => (1 - m[t]) * (1 - v)) };
}

/** Its backward: dlogit = (dg + m·dsm − (1 − m)·dsa) · g(1 − g), dg the skip loss's share. */
export function referenceRouteGateBackward(
  g: ArrayLike<number>,
  m: ArrayLike<number>,
  dg: ArrayLike<number>,
  dsm: ArrayLike<number>,
  dsa: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(g, (v, t) => (dg[t] + m[t] * dsm[t] - (1 - m[t]) * dsa[t]) * v * (1 - v));
}
