/**
 * Which matmul kernel runs, by where the weights live and how many activation rows a step has. Every kernel
 * binds 0 params, 1 step, 2 x, 3 w (one part), 4 y, 5 row_scale, 6 norm_w, 7-10 the RoPE epilogue's rows,
 * cos_sin, k_cache, v_cache (gemv_tex and gemv_tex_rows also 11 x's row texture, gemv_tex 12 the argmax pairs
 * and 13 x quantized):
 * - buffer weights: `matmul`, the GEMV, up to `gemvMaxRows` rows ("coop": TPR threads per output row striding
 *   over K with coalesced loads, partial sums reduced in workgroup memory; "row": one row per invocation, no
 *   barrier, for CPU software GPUs), and `gemm`, the tiled GEMM, beyond (64 × 64 output tiles, K staged 32 at
 *   a time through workgroup memory);
 * - texture weights (CPU software GPUs): `gemm_tex`, the direct kernel, for any row count (NT activation rows
 *   × 4 weight rows × `directGroups` per invocation straight from memory, no barrier), and `gemv_tex` for one
 *   row whose x comes through a uniform window or a row texture — straight-line code, parameters through a
 *   storage binding — and `gemv_tex_rows` for 2 to 8 rows (NR rows per invocation, each weight block fetched
 *   once for all), a step of more rows than the profile's largest NR, or than fit one window, in row groups:
 *   a dispatch each, with x's window bound at the group's first row (kernels/README.md says what in llvmpipe
 *   calls for each).
 */

import type { Kernel, KernelCache } from "../../gpu/kernels.ts";
import { type GpuMatrix, weightCode } from "../../gpu/matrix.ts";
import { isWindowed, UNIFORM_WINDOW } from "../../gpu/buffers.ts";
import { FEW_ROW_MAX, FEW_ROW_SIZES } from "../../gpu/profile.ts";
import type { GemvVariant, MatmulIO, MatmulOptions } from "./options.ts";
import { wantsQuantizedX } from "./quantize_x.ts";
import type { RowWindow } from "./bindings.ts";

/** Workgroup size of the one-row-per-invocation GEMV and of the direct kernels. */
const ROW_WG = 8;
/** Activation rows per invocation of the direct kernel: up to 4 rows, and beyond. */
const DIRECT_NT_GEMV = 4;
const DIRECT_NT_GEMM = 8;
/** Activation rows per GEMV workgroup row (coop, row). */
const GEMV_NB = 4;
/** gemv_tex_rows's 4-row groups per pass over K (its G): an invocation takes at least that many. */
const FEW_G = 4;

/** A kernel and how its grid covers the matrix; `dispatch` gets one entry per part when bound. */
export interface Plan {
  kernel: Kernel;
  /** Output rows per workgroup. */
  rowsPerGroup: number;
  /** Activation rows per workgroup row of the grid. */
  nPerGroup: number;
  /** gemv_tex_rows: the row group's first activation row and where its rows lie in x's window. */
  rows?: RowWindow;
  dispatch: PartDispatch[];
}

export interface PartDispatch {
  bind: GPUBindGroup;
  x: number;
  z: number;
}

/** The kernels a matmul may take, by step size. */
export interface Plans {
  gemvVariant: GemvVariant | "direct";
  gemmVariant: "tiled" | "direct";
  gemvMaxRows: number;
  /** 4-row groups per invocation of the texture kernels. */
  groups: number;
  /** One-row steps on texture weights: gemv_tex, x (and the norm weights) through uniform windows. */
  one: Plan | null;
  /**
   * Steps of n rows (index n, 2 ≤ n ≤ 8) on texture weights: gemv_tex_rows in row groups, one dispatch each
   * (plans shared between counts; see fewRowGroups); an empty list where the rows do not fit the windows.
   */
  few: Plan[][];
  gemv: Plan;
  gemm: Plan;
}

/**
 * Threads per output row of the coop GEMV: enough threads in all to keep a large GPU's memory busy (a
 * matrix of few rows gets more per row), and more for long rows. Measured on an H100 (BF16, GB/s of
 * weights): 28672 × 4096 2137 at 32 (1662 at 8); 4096 × 14336 1900 at 128 (1466 at 32). Workgroups of
 * max(64, 2·TPR) invocations: SWIGLU needs a gate row and its up row in one workgroup.
 */
function coopThreadsPerRow(rows: number, K: number): number {
  const want = Math.max(65536 / Math.max(1, rows), K / 128);
  return Math.min(128, Math.max(32, 2 ** Math.ceil(Math.log2(want))));
}

/**
 * 4-row groups per invocation of the texture kernels (gemm_tex, gemv_tex; gemv_tex_rows takes at least 4): as
 * many as leave ≥ 16 workgroups to share the matrix, up to 16, so an invocation's set-up (a fused norm's
 * 1 / RMS above all) is spread over many rows (kernels/README.md has the figures).
 */
export function directGroups(rows: number): number {
  const fit = Math.floor(rows / (4 * ROW_WG * 16));
  return 2 ** Math.floor(Math.log2(Math.max(1, Math.min(16, fit))));
}

/** x workgroups beyond 65535 wrap into z; kernels rebuild the block index from both. */
export function grid(blocks: number): { x: number; z: number } {
  const x = Math.max(1, Math.min(blocks, 65535));
  return { x, z: Math.max(1, Math.ceil(blocks / x)) };
}

export function planMatmul(kernels: KernelCache, w: GpuMatrix, io: MatmulIO, opts: MatmulOptions): Plans {
  const texture = w.storage === "texture";
  const dtype = weightCode(w);
  const groups = opts.directGroups ?? directGroups(w.rows);
  const direct = (nt: number): Plan => ({
    kernel: kernels.get("gemm_tex", { W_DTYPE: dtype, WG: ROW_WG, NT: nt }),
    rowsPerGroup: ROW_WG * 4 * groups,
    nPerGroup: nt,
    dispatch: [],
  });
  // Texture weights read one row of x (and the norm weights) through uniform views where it fits.
  const uniformX = texture && isWindowed(io.x) && (!opts.norm || isWindowed(opts.norm.weight)) &&
    w.cols * 4 <= UNIFORM_WINDOW;
  const gemvVariant = texture ? "direct" : opts.gemv ?? "coop";
  return {
    gemvVariant,
    gemmVariant: texture ? "direct" : "tiled",
    gemvMaxRows: opts.gemvMaxRows ?? (texture ? DIRECT_NT_GEMV : 8),
    groups,
    one: uniformX ? oneRowPlan(kernels, dtype, groups, io, opts, wantsQuantizedX(w, opts)) : null,
    few: uniformX ? fewRowPlans(kernels, w, dtype, groups, io, opts) : [],
    gemv: gemvVariant === "direct" ? direct(DIRECT_NT_GEMV) : bufferGemvPlan(kernels, w, gemvVariant),
    gemm: texture ? direct(DIRECT_NT_GEMM) : {
      kernel: kernels.get("gemm", { W_DTYPE: dtype }),
      rowsPerGroup: 64,
      nPerGroup: 64,
      dispatch: [],
    },
  };
}

/**
 * gemv_tex: NORM a pipeline constant (without it no norm weights are read), x from a row texture or not; under
 * XQ x comes quantized (quantize_x.ts, which applies the norm).
 */
function oneRowPlan(
  kernels: KernelCache,
  dtype: number,
  groups: number,
  io: MatmulIO,
  opts: MatmulOptions,
  xq: boolean,
): Plan {
  return {
    kernel: kernels.get("gemv_tex", {
      W_DTYPE: dtype,
      WG: ROW_WG,
      NORM: opts.norm && !io.xTexture && !xq ? 1 : 0,
      XTEX: io.xTexture && !xq ? 1 : 0,
      ARGMAX: io.argmax ? 1 : 0,
      XQ: xq ? 1 : 0,
    }),
    rowsPerGroup: ROW_WG * 4 * groups,
    nPerGroup: 1,
    dispatch: [],
  };
}

/**
 * gemv_tex_rows for each step of 2 to FEW_ROW_MAX rows that `fewRowGroups` can cover, an invocation taking at
 * least FEW_G groups; x from io.xTexture where it holds that many rows (XTEX: its producer normalized them),
 * else through the window with NORM a pipeline constant as in gemv_tex and UNALIGNED where rows of K start
 * mid-vec4. One plan per (NR, first row), shared between step sizes.
 */
function fewRowPlans(
  kernels: KernelCache,
  w: GpuMatrix,
  dtype: number,
  groups: number,
  io: MatmulIO,
  opts: MatmulOptions,
): Plan[][] {
  const plans = new Map<string, Plan>();
  const xtex = (io.xTexture?.height ?? 0) >= FEW_ROW_MAX;
  const plan = (g: RowGroup): Plan => {
    const key = `${g.nr}:${g.row0}:${g.xOffset}`;
    let p = plans.get(key);
    if (!p) {
      const constants = { W_DTYPE: dtype, WG: ROW_WG, NR: g.nr, NORM: opts.norm && !xtex ? 1 : 0 };
      p = {
        kernel: kernels.get("gemv_tex_rows", {
          ...constants,
          XTEX: xtex ? 1 : 0,
          UNALIGNED: xtex || w.cols % 4 === 0 ? 0 : 1,
        }),
        rowsPerGroup: ROW_WG * 4 * Math.max(groups, FEW_G),
        nPerGroup: g.nr,
        rows: g,
        dispatch: [],
      };
      plans.set(key, p);
    }
    return p;
  };
  const few: Plan[][] = [];
  for (let n = 2; n <= FEW_ROW_MAX; n++) {
    few[n] = fewRowGroups(n, w.cols, io.x.size, opts.fewRows ?? FEW_ROW_SIZES)?.map(plan) ?? [];
  }
  return few;
}

/** A row group of a few-row step: NR rows per invocation, and where its rows lie in x's window. */
export interface RowGroup extends RowWindow {
  nr: number;
}

/**
 * How gemv_tex_rows covers a step of n rows of K: in as few row groups as it can, their sizes as even as can
 * be (larger first), each taking the smallest of `sizes` (its NR, ascending) that holds it, where each group's
 * NR rows fit one uniform window of x (`xBytes` long: the window starts at the last 256-byte boundary at or
 * before the group's first row that leaves room for the window). Null where no split fits.
 */
export function fewRowGroups(n: number, K: number, xBytes: number, sizes: number[]): RowGroup[] | null {
  const window = (nr: number, row0: number): RowGroup | null => {
    const at = row0 * K * 4;
    const xOffset = Math.min(at - at % 256, Math.floor((xBytes - UNIFORM_WINDOW) / 256) * 256);
    const xBase = (at - xOffset) / 4;
    return xOffset >= 0 && xBase + nr * K <= UNIFORM_WINDOW / 4 ? { nr, row0, xOffset, xBase } : null;
  };
  for (let g = Math.ceil(n / sizes[sizes.length - 1]); g <= n; g++) {
    const split: RowGroup[] = [];
    for (let i = 0, row0 = 0; i < g; i++) {
      const rows = Math.floor(n / g) + (i < n % g ? 1 : 0);
      const nr = sizes.find((s) => s >= rows);
      const group = nr === undefined ? null : window(nr, row0);
      if (!group) break;
      split.push(group);
      row0 += rows;
    }
    if (split.length === g) return split;
  }
  return null;
}

function bufferGemvPlan(kernels: KernelCache, w: GpuMatrix, variant: GemvVariant): Plan {
  const tpr = variant === "row" ? 1 : coopThreadsPerRow(w.rows, w.cols);
  const wg = variant === "row" ? ROW_WG : Math.max(64, 2 * tpr);
  return {
    kernel: kernels.get("matmul", { W_DTYPE: weightCode(w), TPR: tpr, WG: wg }),
    rowsPerGroup: wg / tpr,
    nPerGroup: GEMV_NB,
    dispatch: [],
  };
}
