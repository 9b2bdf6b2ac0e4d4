/** RoPE in plain TypeScript: rotate-half, as Hugging Face Llama, on one head vector in place at `pos`. */
export function referenceRope(
  vec: Float32Array,
  off: number,
  hd: number,
  pos: number,
  invFreq: Float32Array,
) {
  const half = hd / 2;
  for (let i = 0; i < half; i++) {
    const a = Math.fround(pos * invFreq[i]);
    const c = Math.cos(a), s = Math.sin(a);
    const x1 = vec[off + i], x2 = vec[off + i + half];
    vec[off + i] = x1 * c - x2 * s;
    vec[off + i + half] = x2 * c + x1 * s;
  }
}

/** RMSNorm of one head in place (Qwen3's q_norm / k_norm, shared by the layer's heads): weight · x / rms. */
export function referenceHeadNorm(
  vec: Float32Array,
  off: number,
  hd: number,
  weight: Float32Array,
  eps: number,
) {
  let ss = 0;
  for (let i = 0; i < hd; i++) ss += vec[off + i] ** 2;
  const inv = 1 / Math.sqrt(ss / hd + eps);
  for (let i = 0; i < hd; i++) vec[off + i] = vec[off + i] * inv * weight[i];
}

/** What a layer adds to its attention heads: Qwen3's q/k norms, Qwen2's q/k/v biases (f32 values). */
export interface HeadExtras {
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
  eps?: number;
}

/** One head of q or k at `off` of `vec` as attention sees it: + bias, RMSNorm, RoPE at `pos` (in place). */
export function referenceHead(
  vec: Float32Array,
  off: number,
  hd: number,
  pos: number,
  invFreq: Float32Array,
  bias?: Float32Array,
  biasOff = 0,
  norm?: Float32Array,
  eps = 1e-6,
) {
  if (bias) { for (let i = 0; i < hd; i++) vec[off + i] += bias[biasOff + i]; }
  if (norm) referenceHeadNorm(vec, off, hd, norm, eps);
  referenceRope(vec, off, hd, pos, invFreq);
}

/**
 * kernels/rope_heads.wgsl in plain TypeScript, over rows of a projection output (`qkv`, `stride` floats a row,
 * q / k / v at the given columns, a part left out untouched): q heads biased, normalized and rotated in place;
 * k heads likewise into `kCache`, v heads (+ bias) into `vCache`, at each row's (slot, pos) of `ctx` positions.
 */
export function referenceRopeHeads(
  shape: { numHeads: number; numKvHeads: number; headDim: number; ctx: number },
  at: { stride: number; q?: number; k?: number; v?: number },
  qkv: Float32Array,
  rows: readonly (readonly [number, number])[],
  invFreq: Float32Array,
  caches: { k: Float32Array; v: Float32Array },
  extras: HeadExtras = {},
) {
  const { numHeads: nH, numKvHeads: nKV, headDim: hd, ctx } = shape, kvDim = nKV * hd, e = extras;
  rows.forEach(([slot, pos], r) => {
    const base = r * at.stride, cache = (slot * ctx + pos) * kvDim;
    for (let h = 0; at.q !== undefined && h < nH; h++) {
      referenceHead(qkv, base + at.q + h * hd, hd, pos, invFreq, e.qBias, h * hd, e.qNorm, e.eps);
    }
    if (at.k === undefined || at.v === undefined) return;
    const k = qkv.slice(base + at.k, base + at.k + kvDim), v = qkv.slice(base + at.v, base + at.v + kvDim);
    for (let h = 0; h < nKV; h++) referenceHead(k, h * hd, hd, pos, invFreq, e.kBias, h * hd, e.kNorm, e.eps);
    if (e.vBias) { for (let i = 0; i < kvDim; i++) v[i] += e.vBias[i]; }
    caches.k.set(k, cache);
    caches.v.set(v, cache);
  });
}

/** Training rows for RoPE: `heads` heads of `headDim` from column `offset` of rows `stride` apart. */
export interface RopeRows {
  rows: number;
  /** Row r sits at position r mod seqLen. */
  seqLen: number;
  headDim: number;
  heads: number;
  stride: number;
  offset: number;
}

/**
 * kernels/rope_train.wgsl in plain TypeScript (in place, f32 or f64): rotate-half at t = r mod T from the
 * cos/sin table (`ropeTable`); `inverse` rotates back — the transpose, which is the backward of the forward.
 */
export function referenceRopeRows(
  x: Float32Array | Float64Array,
  cosSin: Float32Array,
  at: RopeRows,
  inverse = false,
): void {
  const half = at.headDim / 2, sign = inverse ? -1 : 1;
  for (let r = 0; r < at.rows; r++) {
    const t = r % at.seqLen;
    for (let h = 0; h < at.heads; h++) {
      const base = r * at.stride + at.offset + h * at.headDim;
      for (let i = 0; i < half; i++) {
        const c = cosSin[(t * half + i) * 2], s = sign * cosSin[(t * half + i) * 2 + 1];
        const x1 = x[base + i], x2 = x[base + i + half];
        x[base + i] = x1 * c - x2 * s;
        x[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
}
