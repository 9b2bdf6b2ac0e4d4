/**
 * The matmul tests' cases (test/matmul.test.ts): weight formats, sizes, tolerances and the case shape, the
 * flavours that cycle accumulate, row scales, alpha, y offsets and fusions, the GEMV, GEMM and split-matrix
 * cases, texture weights, and the kernel a texture case must plan.
 */

import type { MatmulOptions } from "../src/ops/matmul/options.ts";
import type { DType } from "../src/model/dtype.ts";
import type { QuantFormat } from "../src/model/quant.ts";

export const DTYPES: DType[] = ["F32", "F16", "BF16"];
/** Weight formats: each dtype as stored, and BF16 quantized at upload. */
export const FORMATS: Array<[DType, QuantFormat | null]> = [
  ...DTYPES.map((d) => [d, null] as [DType, null]),
  [
    "BF16",
    "q8",
  ],
  ["BF16", "q4"],
];
export const KS = [7, 64, 100, 257];
export const MS = [1, 5, 33, 130];
export const TOL = { atol: 1e-4, rtol: 1e-3 };
/**
 * gemv_tex XQ with the norm computed on the GPU: its normalized x may differ from the reference's in the last
 * bit, and a value at a rounding boundary then lands one step d (≤ 2^-6 of its block's largest) away: rare, and
 * within this of an output at these sizes (the exact-x cases keep TOL).
 */
export const TOL_XQ_NORM = { atol: 5e-2, rtol: 1e-3 };

export interface Case {
  N: number;
  K: number;
  M: number;
  dtype: DType;
  /** Quantized at upload. */
  quant?: QuantFormat | null;
  opts: MatmulOptions;
  /** Split the matrix into parts of this many rows. */
  partRows?: number;
  yOffset?: number;
  /** Fused RMSNorm on the input (random weights, eps 1e-5). */
  norm?: boolean;
  /** Fused SwiGLU output (rows read as interleaved gate/up pairs). */
  swiglu?: boolean;
  /** Weights stored in textures (gemm_tex). */
  texture?: boolean;
  /** x and the norm weights in windowed buffers (as the engine makes them): gemm_tex's uniform-x path. */
  windowed?: boolean;
  /** Write the rows in pieces starting at these rows (as stacked projections are), not in one upload. */
  pieces?: number[];
  /**
   * x's rows also in a row texture (NaN past K and past the step's rows; normalized with `norm`), which one-row
   * steps read instead (gemv_tex XTEX), and steps of 2-8 rows where it has FEW_ROW_MAX rows (gemv_tex_rows
   * XTEX: x's buffer then holds only NaN, which they must not read).
   */
  xTexture?: boolean;
  /** The row texture's rows (default: 1 for one-row steps, FEW_ROW_MAX beyond). */
  textureRows?: number;
  /** Argmax pairs (gemv_tex ARGMAX): they must name the largest output, ties to the lowest index. */
  argmax?: boolean;
  /** Every weight row a copy of row 0: all outputs tie. */
  dupRows?: boolean;
  /** Bytes of x beyond its N rows (windowed: room for a row group's window to start at its first row). */
  xRoom?: number;
  /** gemv_tex_rows's row groups the plan must take ("3+3"; Matmul.rowGroupsFor). */
  rowGroups?: string;
  /** One-row steps take quantize_x and gemv_tex XQ (opts.quantizedX on q8 / q4 texture weights, N = 1). */
  quantizedX?: boolean;
}

let seed = 1;

/** The next seed of the file's random data (weights, x, y and row scales draw in turn). */
export const nextSeed = (): number => seed++;

/**
 * The kernel a texture case runs: windowed x takes gemv_tex for one row and gemv_tex_rows for 2-8 rows (row
 * groups of up to 4 rows: any K ≤ 4000 fits them, larger ones only where the case names its row groups);
 * anything else gemm_tex. Null for buffer weights, or where the case does not say.
 */
export function textureKernel(
  c: Pick<Case, "N" | "K" | "texture" | "windowed" | "rowGroups">,
): string | null {
  if (!c.texture) return null;
  if (c.windowed && c.N === 1 && c.K <= 16384) return "gemv_tex";
  if (!c.windowed || c.N > 8) return "gemm_tex";
  if (c.rowGroups !== undefined) return c.rowGroups ? "gemv_tex_rows" : "gemm_tex";
  return c.K <= 4000 ? "gemv_tex_rows" : null;
}

/**
 * Accumulate and scale mode are pipeline constants, so they follow K (one pipeline per kernel and K keeps
 * llvmpipe's compile time down): K 7 plain store, 64 accumulate × row_scale, 100 store × (1 − row_scale),
 * 257 accumulate (K 7 and 257 also take the unaligned-x path). Alpha and y offsets (uniforms) cycle with i.
 */
export function flavour(
  K: number,
  i: number,
  M = 0,
): { opts: MatmulOptions; yOffset: number; norm: boolean; swiglu: boolean } {
  const combos: Record<number, [boolean, 0 | 1 | 2]> = {
    4: [false, 0],
    7: [false, 0],
    64: [true, 1],
    100: [false, 2],
    257: [true, 0],
  };
  const [accumulate, scaleMode] = combos[K] ?? [i % 2 === 1, (i % 3) as 0 | 1 | 2];
  const alpha = i % 5 === 4 ? 0.5 : undefined;
  // Fusions: RMSNorm on every third case, SwiGLU on every other case with an even row count.
  const norm = i % 3 === 0, swiglu = M % 2 === 0 && i % 2 === 0;
  return { opts: { accumulate, scaleMode, alpha }, yOffset: i % 4 === 1 ? 2 : 0, norm, swiglu };
}

/** Every K × M × N of the grid, flavoured in turn, with `variant` and GEMV steps of `gemvMaxRows` at most. */
function gridCases(
  [dtype, quant]: [DType, QuantFormat | null],
  variant: Partial<MatmulOptions>,
  Ns: number[],
  gemvMaxRows: number,
): Case[] {
  const cases: Case[] = [];
  let i = 0;
  for (const K of KS) {
    for (const M of MS) {
      for (const N of Ns) {
        const f = flavour(K, i++, M);
        const opts = { ...f.opts, ...variant, gemvMaxRows };
        cases.push({ N, K, M, dtype, quant, opts, yOffset: f.yOffset, norm: f.norm, swiglu: f.swiglu });
      }
    }
  }
  return cases;
}

/** GEMV steps of 1 to 6 rows; N = 6 with gemvMaxRows 8: two blocks of activation rows in the GEMV grid. */
export const gemvCases = (format: [DType, QuantFormat | null], variant: Partial<MatmulOptions>): Case[] =>
  gridCases(format, variant, [1, 2, 3, 6], 8);

/** GEMM steps of 5, 17 and 70 rows (gemvMaxRows 1: the GEMM plan). */
export const gemmCases = (format: [DType, QuantFormat | null], variant: Partial<MatmulOptions>): Case[] =>
  gridCases(format, variant, [5, 17, 70], 1);

export function splitCases(
  [dtype, quant]: [DType, QuantFormat | null],
  variants: Partial<MatmulOptions>[],
): Case[] {
  const cases: Case[] = [];
  let i = 0;
  for (const K of [64, 257]) {
    for (const N of [1, 3, 70]) {
      for (const v of variants) {
        const f = flavour(K, i++, 130);
        const opts: MatmulOptions = { ...f.opts, ...v, gemvMaxRows: v.gemv ? 70 : 0 };
        // Odd y offsets without SwiGLU (its offsets are even by contract).
        const yOffset = f.swiglu ? f.yOffset + 2 : f.yOffset + 1;
        const { norm, swiglu } = f;
        cases.push({ N, K, M: 130, dtype, quant, opts, partRows: 40, yOffset, norm, swiglu });
      }
    }
  }
  return cases;
}

/**
 * Every case again with the weights in textures (the gemm_tex kernel, whatever variant the case names), x and
 * the norm weights windowed as the engine makes them when `windowed` (the paths through the uniform window:
 * gemv_tex for N = 1 (any K), gemv_tex_rows for 2 to 8 rows; and single tail rows of the GEMM plan such as row
 * 16 of 17 where 16 · K % 4 = 0).
 * Invocations take 1, 2 or 3 groups of 4 weight rows in turn (M = 130 leaves the last invocation groups past
 * the matrix, which must store nothing).
 */
export const inTextures = (cases: Case[], windowed = true): Case[] =>
  cases.map((c, i) => ({ ...c, texture: true, windowed, opts: { ...c.opts, directGroups: 1 + (i % 3) } }));
