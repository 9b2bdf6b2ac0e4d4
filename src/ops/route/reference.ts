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
