/**
 * The matmul tests' cases on texture weights beyond the plain GEMV and GEMM sets (test/matmul.test.ts): rows
 * written in pieces, the uniform window's edge, x from a row texture with argmax pairs, 2-8 windowed rows
 * (gemv_tex_rows) and their row groups, and x quantized to int8 blocks (quantize_x + gemv_tex XQ).
 */

import type { DType } from "../src/model/dtype.ts";
import type { QuantFormat } from "../src/model/quant.ts";
import { type Case, flavour, KS, MS } from "./matmul_cases.ts";

/**
 * Rows written in pieces that start and end inside 4-row groups (texture parts interleave each group's rows),
 * as a stacked [q; k; v; router] matrix is, in buffers and in textures, split or not.
 */
export const pieceCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
  [false, true].flatMap((texture) =>
    [100, 257].map((K, i): Case => ({
      N: 1 + 2 * i,
      K,
      M: 37,
      dtype,
      quant,
      opts: { directGroups: 2 },
      partRows: i === 1 ? 12 : undefined,
      pieces: [0, 3, 6, 13, 14, 25],
      norm: i === 0,
      texture,
      windowed: texture,
    }))
  );

/**
 * Texture weights at the uniform window's edge (16384 floats): one row of K = 16384 fills the window and takes
 * gemv_tex; K = 16388 does not fit and takes gemm_tex; 2 rows of K = 1028 take gemv_tex_rows, 9 gemm_tex's
 * GEMM plan. Fused norm on the first two.
 */
export const windowEdgeCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
  [[1, 16384], [1, 16388], [2, 1028], [9, 1028]].map(([N, K], i) => ({
    N,
    K,
    M: 12,
    dtype,
    quant,
    opts: { gemvMaxRows: N === 9 ? 1 : 4, accumulate: i % 2 === 1 },
    norm: i < 2,
    texture: true,
    windowed: true,
  }));

/**
 * One-row texture steps that read x from a row texture (as the LM head after the final norm does), with the
 * argmax pairs where the epilogue is the plain store: odd K (the texture's last texel holds NaN past K), rows
 * that leave groups and invocations part-filled, split matrices (pairs follow part after part), and rows that
 * all tie (the lowest index must win, across invocations and parts).
 */
export const rowTextureCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] => {
  const cases: Case[] = [];
  let i = 0;
  for (const K of KS) {
    for (const M of [...MS, 130]) {
      const f = flavour(K, i, M);
      const argmax = !f.swiglu && !f.opts.accumulate || i % 2 === 1;
      const opts = argmax ? { ...f.opts, accumulate: false, directGroups: 1 + (i % 3) } : f.opts;
      cases.push({
        N: 1,
        K,
        M,
        dtype,
        quant,
        opts,
        yOffset: f.yOffset,
        norm: f.norm,
        swiglu: argmax ? false : f.swiglu,
        texture: true,
        windowed: true,
        xTexture: true,
        argmax,
        partRows: M === 130 ? 40 : undefined,
        dupRows: argmax && i % 4 === 1,
      });
      i++;
    }
  }
  return cases;
};

/**
 * gemv_tex_rows: 2 to 8 windowed rows on texture weights, every row count (2, 3 and 4 in one dispatch, 5 to 8
 * in two row groups, 3+2 to 4+4: the second reads its rows from mid-window, x_base, and stores them, and
 * their row scales, at rows 3 or 4 on), odd K (K % 4 ≠ 0: rows start mid-vec4 in the window; K not a multiple
 * of the block: the masked tail chunk), M that leaves groups and invocations part-filled, 1 to 6 groups per
 * invocation (it takes at least 4, 4 a pass: with 5 or 6, the second pass's last groups belong to the next
 * invocation and must not be stored), split matrices, accumulate (a group that stored rows of another would
 * add them twice), row scales, alpha, y offsets, NORM and SWIGLU.
 */
export const fewRowCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] => {
  const cases: Case[] = [];
  let i = 0;
  for (const K of KS) {
    for (const M of [6, 36, 130]) {
      const N = 2 + (i % 7);
      const f = flavour(K, i, M);
      const opts = { ...f.opts, directGroups: 1 + (i % 6) };
      const partRows = M === 130 && i % 2 === 0 ? 40 : undefined;
      const { yOffset, norm, swiglu } = f;
      cases.push({
        N,
        K,
        M,
        dtype,
        quant,
        opts,
        yOffset,
        norm,
        swiglu,
        partRows,
        texture: true,
        windowed: true,
        // x from a texture of rows on every other case; of one row (too few: not read) on some.
        xTexture: i % 2 === 1 || i % 6 === 2,
        textureRows: i % 6 === 2 ? 1 : undefined,
      });
      i++;
    }
  }
  return cases;
};

/**
 * Few rows at the uniform window's edge and row groups whose windows start past x's first byte. In x of just
 * its rows (a window cannot start past the last 64 KiB): 8 rows of 2048 fill it (4+4), 5 rows of 2052 (3+2),
 * 4 rows of 4096 fill it, 3 rows of 4100 (one group of 3), 2 rows of 8192 fill it; 3 rows of 8000 do not fit
 * as 2+1 (the second group's window would start 30464 bytes in, 8384 floats before its row: gemm_tex). With
 * room after x, windows start at each group's first row, at the 256-byte boundary before it: 6 rows of 3072
 * (3+3; the dmtd-small shape's down projection, which took gemm_tex before), 7 of 2300 (4+3, its row 4 48
 * floats past the boundary), 5 of 4100 (3+2), 6 of 2051 (3+3, K odd: row 3 starts mid-vec4) and 3 of 8000
 * (2+1, each group 2 rows per invocation, the second reading a row past the step). NORM on half; x from a
 * texture of rows on a third of those that take gemv_tex_rows (3+3 of K 2051: rows aligned there).
 */
export const fewRowEdgeCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
  ([
    [8, 2048, 0, "4+4"],
    [5, 2052, 0, "3+2"],
    [4, 4096, 0, "4"],
    [3, 4100, 0, "3"],
    [2, 8192, 0, "2"],
    [3, 8000, 0, ""],
    [6, 3072, 65536, "3+3"],
    [7, 2300, 65536, "4+3"],
    [5, 4100, 65536, "3+2"],
    [6, 2051, 65536, "3+3"],
    [3, 8000, 65536, "2+2"],
  ] as const).map(([N, K, xRoom, rowGroups], i) => ({
    N,
    K,
    M: 12,
    dtype,
    quant,
    opts: { accumulate: i % 2 === 1, scaleMode: 1 },
    norm: i % 2 === 0,
    texture: true,
    windowed: true,
    xRoom,
    rowGroups,
    xTexture: rowGroups !== "" && i % 3 === 0,
  }));

/**
 * q8 and q4 one-row steps with x quantized to int8 blocks (quantize_x + gemv_tex XQ): odd K (blocks part-filled, x
 * past K zero), K past 8 blocks (the scales' texel), x from the window or a row texture, NORM in the quantizer
 * or already applied in the texture, SWIGLU, accumulate, row scales, alpha, split matrices, argmax pairs.
 * Where the norm runs on the GPU its rounding is not the reference's: those cases check the result against the
 * unquantized reference within the x-rounding bound only (xqBound, and TOL_XQ).
 */
export const quantizedXCases = (quant: QuantFormat): Case[] => {
  const cases: Case[] = [];
  let i = 0;
  for (const K of [7, 64, 100, 257, 1000, 2048]) {
    for (const M of [5, 36, 130]) {
      const f = flavour(K, i, M);
      const xTexture = i % 3 !== 2;
      const argmax = i % 4 === 0;
      cases.push({
        N: 1,
        K,
        M,
        dtype: "BF16",
        quant,
        opts: { ...f.opts, quantizedX: true, ...(argmax ? { accumulate: false } : {}) },
        yOffset: f.yOffset,
        norm: f.norm || i % 5 === 1,
        swiglu: argmax ? false : f.swiglu,
        texture: true,
        windowed: true,
        xTexture,
        argmax,
        partRows: M === 130 ? 40 : undefined,
        quantizedX: true,
      });
      i++;
    }
  }
  return cases;
};
