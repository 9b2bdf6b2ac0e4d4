/** Matmul and its SwiGLU epilogue in plain TypeScript (f64 sums), for checking the kernels. */

import type { QuantFormat } from "../../model/quant.ts";

/** x [N, K] · wᵀ with w [M, K] (decoded f32 values) → [N, M]. */
export function referenceMatmul(
  x: Float32Array,
  N: number,
  K: number,
  w: Float32Array,
  M: number,
): Float32Array {
  const out = new Float32Array(N * M);
  for (let n = 0; n < N; n++) {
    const xo = n * K;
    for (let m = 0; m < M; m++) {
      const wo = m * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
      out[n * M + m] = s;
    }
  }
  return out;
}

/** y [M] = w [M, K] · x [K]. */
export function referenceMatvec(w: Float32Array, x: Float32Array, M: number, K: number): Float32Array {
  return referenceMatmul(x, 1, K, w, M);
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

/** The SWIGLU epilogue: [N, 2I] with interleaved (gate, up) → [N, I] of silu(gate) · up. */
export function referenceSwiglu(gu: Float32Array, N: number, I: number): Float32Array {
  const out = new Float32Array(N * I);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < I; i++) {
      const g = gu[n * 2 * I + 2 * i], u = gu[n * 2 * I + 2 * i + 1];
      out[n * I + i] = g / (1 + Math.exp(-g)) * u;
    }
  }
  return out;
}

/** Values a training reference reads: f32 buffers or the f64 copies a finite-difference check perturbs. */
export type Values = ArrayLike<number>;

/** Training forward, f64: y [N, M] = x [N, K] · wᵀ, w [M, K]. */
export function referenceLinear(x: Values, w: Values, N: number, K: number, M: number): Float64Array {
  const y = new Float64Array(N * M);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[n * K + k] * w[m * K + k];
      y[n * M + m] = s;
    }
  }
  return y;
}

/** Its gradients, f64: dx [N, K] = dy · w, dw [M, K] = dyᵀ · x. */
export function referenceLinearBackward(
  x: Values,
  w: Values,
  dy: Values,
  N: number,
  K: number,
  M: number,
): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(N * K);
  const dw = new Float64Array(M * K);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const g = dy[n * M + m];
      for (let k = 0; k < K; k++) {
        dx[n * K + k] += g * w[m * K + k];
        dw[m * K + k] += g * x[n * K + k];
      }
    }
  }
  return { dx, dw };
}

/** Halves to even, as WGSL's round. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One block of up to 32 values of x as quantize_x.wgsl quantizes it: its step d and integers q (zero past x). */
function quantizeXBlock(block: Float32Array): { d: number; q: number[] } {
  const peak = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const e = new Uint32Array(Float32Array.of(peak).buffer)[0] >>> 23;
  const d = e >= 7 ? 2 ** (e - 127 - 6) : 0;
  const q = Array.from({ length: 32 }, (_, i) => i < block.length && d ? roundEven(block[i] / d) : 0);
  return { d, q: q.map((v) => Math.max(-127, Math.min(127, v))) };
}

/**
 * x (f32 values) as quantize_x.wgsl quantizes it for gemv_tex's XQ path, dequantized: per block of 32, d =
 * 2^(E − 6) for the largest magnitude in [2^E, 2^(E + 1)) and q = round(v / d) (halves to even, ±127), exact
 * in f64 as d is a power of two; a block whose largest magnitude is below 2^-120 becomes zeros.
 */
export function quantizeXRow(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let k0 = 0; k0 < x.length; k0 += 32) {
    const block = x.subarray(k0, k0 + 32), { d, q } = quantizeXBlock(block);
    block.forEach((_, i) => out[k0 + i] = q[i] * d);
  }
  return out;
}

/**
 * The texels that quantize_x.wgsl (and rmsnorm.wgsl QUANT) write for x, paired for `format` weights, as u32
 * words (lib/quantize_block.wgsl): per block b, word i of texel 4b + g holds q[j + s] + 2^16 · q[j] (mod 2^32)
 * with j = 8g + i, s = 4 for q4 (a word's nibbles i and i + 4), j = 8g + 4⌊i / 2⌋ + i mod 2, s = 2 for q8 (a
 * word's bytes j and j + 2); texel 4 · nb + b holds (d's f32 bits, 8 · Σ q, 0, 0).
 */
export function quantizedXWords(x: Float32Array, format: QuantFormat): Uint32Array {
  const nb = Math.ceil(x.length / 32), words = new Uint32Array(4 * 5 * nb);
  for (let b = 0; b < nb; b++) {
    const { d, q } = quantizeXBlock(x.subarray(32 * b, 32 * b + 32));
    for (let t = 0; t < 16; t++) {
      const g = t >> 2, i = t & 3;
      const [j, s] = format === "q4" ? [8 * g + i, 4] : [8 * g + 4 * (i >> 1) + (i & 1), 2];
      words[16 * b + t] = (q[j + s] + q[j] * 65536) >>> 0;
    }
    const dBits = new Uint32Array(Float32Array.of(d).buffer)[0];
    words.set([dBits, (8 * q.reduce((a, v) => a + v, 0)) >>> 0], 4 * (4 * nb + b));
  }
  return words;
}
