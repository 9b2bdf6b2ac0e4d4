/**
 * What a matmul computes and where it reads and writes:
 *   y[n, yOffset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k],  s(n) = 1, rowScale[n] or 1 − rowScale[n]
 * for a weight matrix on the GPU (any dtype, or quantized q8 / q4; split into parts or not). Fusions save a
 * kernel each: `norm` reads x through RMSNorm, `swiglu` takes a matrix whose rows interleave gate and up and
 * writes silu(gate) · up, `rope` rotates q and k and writes k and v into the KV cache.
 */

import type { BufferGemv } from "../../gpu/profile.ts";
import type { QuantizedRow } from "./quantize_x.ts";

/** 0: no row scale; 1: × rowScale[n]; 2: × (1 − rowScale[n]). */
export type ScaleMode = 0 | 1 | 2;
/**
 * GEMV kernels for buffer weights (few activation rows): "coop" 32+ threads per output row, coalesced loads,
 * workgroup reduction; "row" one output row per invocation. Texture weights take their own kernels (plan.ts:
 * `gemm_tex`, and `gemv_tex` / `gemv_tex_rows` for few rows of windowed x). The backend profile picks
 * (`bufferGemv`).
 */
export type GemvVariant = BufferGemv;

export interface MatmulOptions {
  /** y += result (fused residual add) instead of y = result. */
  accumulate?: boolean;
  /** Per-activation-row scale read from `io.rowScale` (FlexiDepth gates). */
  scaleMode?: ScaleMode;
  /** Read x through RMSNorm with these weights (f32 [K]): x · rsqrt(mean(x²) + eps) · weight. */
  norm?: { weight: GPUBuffer; eps: number };
  /**
   * The matrix's rows interleave gate and up (see `interleaveRows`): output column (yOffset + m) / 2 gets
   * silu(gate) · up, times alpha and the row scale. Needs an even row count, yOffset and part boundaries.
   */
  swiglu?: boolean;
  /**
   * RoPE and the KV write in the epilogue (every kernel; see gemm_tex.wgsl): the matrix is
   * [q; k; v] with each head's q and k rows stored as rotation pairs (model/layout.ts `ropePairRows`); q goes to y, k and v
   * into the KV cache, and rows after v (a routed layer's W_enc) to y unrotated.
   */
  rope?: RopeEpilogue;
  /** Constant factor on the result (default 1). */
  alpha?: number;
  /** The GEMV variant for buffer weights (the backend profile's `bufferGemv`; default "coop"). */
  gemv?: GemvVariant;
  /** Largest activation row count served by the GEMV kernel; more go to the GEMM (default 4, 8 on GPUs). */
  gemvMaxRows?: number;
  /**
   * q8 and q4 texture weights: one-row steps quantize x to int8 blocks first (quantize_x.wgsl) and take gemv_tex's
   * integer path (the backend profile's `quantizedX`; default off).
   */
  quantizedX?: boolean;
  /**
   * gemv_tex_rows's rows per invocation (its NR), ascending: a few-row step takes row groups of at most the
   * largest (the profile's `FEW_ROW_SIZES` by default; tests and benchmarks pass others).
   */
  fewRows?: number[];
  /** 4-row groups per invocation of the direct kernel (tests; default by shape, see `directGroups`). */
  directGroups?: number;
}

export interface RopeEpilogue {
  /** {slot, pos} per activation row. */
  rows: GPUBuffer;
  /** [ctx, headDim / 2] (cos, sin). */
  cosSin: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  headDim: number;
  /** Matrix rows before k (0 when the matrix is [k; v]). */
  qRows: number;
  /** Rows of k (0 when the matrix is q alone). */
  kvDim: number;
  ctx: number;
  /** The cache holds f16 pairs, not f32 (flag bit 7, KV16). */
  kvF16?: boolean;
}

export interface MatmulIO {
  /** f32 [N, K] row-major; its size must be a multiple of 16 bytes (as `storageBuffer` makes it). */
  x: GPUBuffer;
  /** f32 [N, yStride]. */
  y: GPUBuffer;
  /** Elements between rows of y. */
  yStride: number;
  /** Column of y that matrix row 0 writes (default 0): several matrices can fill one output row. */
  yOffset?: number;
  /** The shared step uniform; kernels bound activation rows by its n_rows. */
  step: GPUBuffer;
  /** f32 [N]: required when scaleMode ≠ 0. */
  rowScale?: GPUBuffer;
  /**
   * x's rows again, as a row texture (rowTexture) that its producer writes too (rmsnorm.wgsl TEXTURE), already
   * normalized when the matmul has `norm` (the producer applied it): one-row steps on texture weights read x
   * there (gemv_tex.wgsl XTEX, without NORM), and so do steps of 2 to FEW_ROW_MAX rows where the texture has
   * that many rows (gemv_tex_rows.wgsl XTEX). Ignored by the other kernels.
   */
  xTexture?: GPUTexture;
  /**
   * xTexture's row quantized in int8 blocks by the same producer (rmsnorm.wgsl QUANT): a matmul that would
   * quantize x itself (quantize_x.ts) reads this instead and dispatches no quantize_x.
   */
  xq?: QuantizedRow;
  /**
   * One-row texture steps (the LM head): each invocation also writes the (key, index) pair of its largest
   * output here (gemv_tex.wgsl ARGMAX), `argmaxPairs` pairs in all, for the sampler (`headParts`).
   */
  argmax?: GPUBuffer;
}
