/** RoPE tables, computed once on the host. */

import { type ModelConfig, ropeInvFreq } from "../../model/config.ts";

/** cos/sin of every position × frequency, as Hugging Face computes them (f32 angle, then cos/sin). */
export function ropeTable(cfg: ModelConfig, context: number): Float32Array {
  const invFreq = ropeInvFreq(cfg);
  const half = cfg.headDim / 2;
  const out = new Float32Array(context * half * 2);
  for (let p = 0; p < context; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * invFreq[i]);
      out[(p * half + i) * 2] = Math.cos(a);
      out[(p * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return out;
}
