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

/** A training batch's attention: B sequences of T rows (row r = b·T + t), causal within each. */
export interface TrainAttentionDims extends AttentionDims {
  batch: number;
  seqLen: number;
}

/** The probabilities of query row i (sequence start `seq`, head h) over keys seq..i, in f64. */
function probs(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  dims: TrainAttentionDims,
  seq: number,
  i: number,
  h: number,
) {
  const { numHeads: nH, numKvHeads: nKV, headDim: hd } = dims;
  const kvOff = Math.floor(h / (nH / nKV)) * hd, scale = 1 / Math.sqrt(hd);
  const p = new Float64Array(i - seq + 1);
  let max = -Infinity;
  for (let j = seq; j <= i; j++) {
    let s = 0;
    for (let d = 0; d < hd; d++) s += q[(i * nH + h) * hd + d] * k[j * nKV * hd + kvOff + d];
    p[j - seq] = s * scale;
    max = Math.max(max, p[j - seq]);
  }
  let sum = 0;
  for (let j = 0; j < p.length; j++) sum += p[j] = Math.exp(p[j] - max);
  for (let j = 0; j < p.length; j++) p[j] /= sum;
  return { p, lse: max + Math.log(sum), kvOff };
}

/** Training attention forward in f64: out [N, Hq·hd] and the log-sum-exp of the scaled scores, lse [N, Hq]. */
export function referenceTrainAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: TrainAttentionDims,
): { out: Float64Array; lse: Float64Array } {
  const { numHeads: nH, numKvHeads: nKV, headDim: hd, batch, seqLen: T } = dims;
  const out = new Float64Array(batch * T * nH * hd), lse = new Float64Array(batch * T * nH);
  for (let i = 0; i < batch * T; i++) {
    const seq = i - (i % T);
    for (let h = 0; h < nH; h++) {
      const r = probs(q, k, dims, seq, i, h);
      lse[i * nH + h] = r.lse;
      for (let j = seq; j <= i; j++) {
        for (let d = 0; d < hd; d++) {
          out[(i * nH + h) * hd + d] += r.p[j - seq] * v[j * nKV * hd + r.kvOff + d];
        }
      }
    }
  }
  return { out, lse };
}

/**
 * Training attention backward in f64, the textbook way (the probabilities recomputed from q and k): with
 * dP_ij = dout_i · v_j and dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'), dq_i = scale Σ_j dS_ij k_j,
 * dk_j = scale Σ_i dS_ij q_i and dv_j = Σ_i P_ij dout_i, dk and dv summed over each group's query heads.
 */
export function referenceTrainAttentionBackward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  dims: TrainAttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { numHeads: nH, numKvHeads: nKV, headDim: hd, batch, seqLen: T } = dims, kvDim = nKV * hd;
  const scale = 1 / Math.sqrt(hd);
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  for (let i = 0; i < batch * T; i++) {
    const seq = i - (i % T);
    for (let h = 0; h < nH; h++) {
      const { p, kvOff } = probs(q, k, dims, seq, i, h), qi = (i * nH + h) * hd;
      const dp = p.map((_, j) => {
        let s = 0;
        for (let d = 0; d < hd; d++) s += dout[qi + d] * v[(seq + j) * kvDim + kvOff + d];
        return s;
      });
      const D = p.reduce((a, pj, j) => a + pj * dp[j], 0);
      for (let j = 0; j < p.length; j++) {
        const ds = p[j] * (dp[j] - D), kj = (seq + j) * kvDim + kvOff;
        for (let d = 0; d < hd; d++) {
          dq[qi + d] += scale * ds * k[kj + d];
          dk[kj + d] += scale * ds * q[qi + d];
          dv[kj + d] += p[j] * dout[qi + d];
        }
      }
    }
  }
  return { dq, dk, dv };
}
