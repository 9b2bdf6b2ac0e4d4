/** Attention in plain TypeScript (f64 scores and sums), one row at a time. */

export interface AttentionDims {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * Causal grouped-query attention of one row at position `pos`: q [heads × head_dim] against positions
 * 0..pos of one sequence's cache (k and v [positions, kv heads × head_dim]).
 */
export function referenceAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  pos: number,
  dims: AttentionDims,
): Float32Array {
  const { numHeads: nH, numKvHeads: nKV, headDim: hd } = dims;
  const kvDim = nKV * hd, group = nH / nKV;
  const out = new Float32Array(nH * hd);
  const scores = new Float64Array(pos + 1);
  for (let h = 0; h < nH; h++) {
    const kvOff = Math.floor(h / group) * hd;
    let max = -Infinity;
    for (let t = 0; t <= pos; t++) {
      let s = 0;
      for (let d = 0; d < hd; d++) s += q[h * hd + d] * k[t * kvDim + kvOff + d];
      scores[t] = s / Math.sqrt(hd);
      if (scores[t] > max) max = scores[t];
    }
    let sum = 0;
    for (let t = 0; t <= pos; t++) sum += scores[t] = Math.exp(scores[t] - max);
    for (let d = 0; d < hd; d++) {
      let a = 0;
      for (let t = 0; t <= pos; t++) a += scores[t] * v[t * kvDim + kvOff + d];
      out[h * hd + d] = a / sum;
    }
  }
  return out;
}
