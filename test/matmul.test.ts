/**
 * Matmul kernels (GEMV, GEMM; every variant) against the TypeScript reference, for each kernel
 * family and weight format (F32, F16, BF16, and BF16 quantized to q8 and q4 at upload, whose reference is the
 * dequantized weights), on odd sizes, with accumulate, row scales, alpha, y offsets and split matrices.
 */

import { Matmul } from "../src/ops/matmul/matmul.ts";
import type { GemvVariant, MatmulOptions } from "../src/ops/matmul/options.ts";
import { fewRowGroups } from "../src/ops/matmul/plan.ts";
import { quantizeXRow, referenceMatmul, referenceSwiglu } from "../src/ops/matmul/reference.ts";
import { referenceRmsNorm } from "../src/ops/norm/reference.ts";
import { ropePairRows } from "../src/model/layout.ts";
import type { GpuContext } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { createMatrix, rowBytesFor, uploadMatrix, type WeightStorage, writeRows } from "../src/gpu/matrix.ts";
import { bufferFrom, readBuffer, rowTexture, storageBuffer } from "../src/gpu/buffers.ts";
import { FEW_ROW_MAX } from "../src/gpu/profile.ts";
import { decodeToF32, type DType, encodeFromF32 } from "../src/model/dtype.ts";
import { type QuantFormat, quantizeValues } from "../src/model/quant.ts";
import { mulberry32, randomNormal } from "../src/util/random.ts";
import { assertClose, families, testGpu } from "./harness.ts";

const DTYPES: DType[] = ["F32", "F16", "BF16"];
/** Weight formats: each dtype as stored, and BF16 quantized at upload. */
const FORMATS: Array<[DType, QuantFormat | null]> = [...DTYPES.map((d) => [d, null] as [DType, null]), [
  "BF16",
  "q8",
], ["BF16", "q4"]];
const KS = [7, 64, 100, 257];
const MS = [1, 5, 33, 130];
const TOL = { atol: 1e-4, rtol: 1e-3 };
/**
 * gemv_tex XQ with the norm computed on the GPU: its normalized x may differ from the reference's in the last
 * bit, and a value at a rounding boundary then lands one step d (≤ 2^-6 of its block's largest) away: rare, and
 * within this of an output at these sizes (the exact-x cases keep TOL).
 */
const TOL_XQ_NORM = { atol: 5e-2, rtol: 1e-3 };

interface Case {
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

/**
 * gemv_tex XQ against the unquantized reference: rounding x to its blocks' steps d (quantize_x: d = 2^(E − 6),
 * the block's largest |x| in [2^E, 2^(E+1))) moves an output by at most Σ_b d_b / 2 · Σ_(k in b) |w[m, k]|;
 * the quantized reference must lie within that of the exact one (plus 1e-5 of float error).
 */
function xqBound(x: Float32Array, w: Float32Array, refQ: Float32Array, K: number, c: Case): void {
  const exact = referenceMatmul(x, 1, K, w, c.M);
  for (let m = 0; m < c.M; m++) {
    let bound = 1e-5;
    for (let k0 = 0; k0 < K; k0 += 32) {
      const peak = Math.max(...Array.from(x.subarray(k0, Math.min(K, k0 + 32)), Math.abs));
      const d = peak > 0 ? 2 ** (Math.floor(Math.log2(peak)) - 6) : 0;
      for (let k = k0; k < Math.min(K, k0 + 32); k++) bound += d / 2 * Math.abs(w[m * K + k]);
    }
    if (Math.abs(refQ[m] - exact[m]) > bound) {
      throw new Error(`x quantization moved output ${m} by ${Math.abs(refQ[m] - exact[m])} > ${bound}`);
    }
  }
}

/** sample.wgsl's key: the f32 bit pattern as a u32 that sorts like the value, -0 as +0. */
function f2key(v: number): number {
  let b = new Uint32Array(new Float32Array([v]).buffer)[0];
  if (b === 0x80000000) b = 0;
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/**
 * The kernel a texture case runs: windowed x takes gemv_tex for one row and gemv_tex_rows for 2-8 rows (row
 * groups of up to 4 rows: any K ≤ 4000 fits them, larger ones only where the case names its row groups);
 * anything else gemm_tex. Null for buffer weights, or where the case does not say.
 */
function textureKernel(c: Pick<Case, "N" | "K" | "texture" | "windowed" | "rowGroups">): string | null {
  if (!c.texture) return null;
  if (c.windowed && c.N === 1 && c.K <= 16384) return "gemv_tex";
  if (!c.windowed || c.N > 8) return "gemm_tex";
  if (c.rowGroups !== undefined) return c.rowGroups ? "gemv_tex_rows" : "gemm_tex";
  return c.K <= 4000 ? "gemv_tex_rows" : null;
}

let seed = 1;

/** Runs all cases in one submit (reads overlap), then checks each against the reference. */
async function runCases(gpu: GpuContext, kernels: KernelCache, cases: Case[]): Promise<void> {
  const device = gpu.device;
  const enc = device.createCommandEncoder();
  const checks: Array<{ label: string; y: GPUBuffer; expected: Float32Array; mm: Matmul; tol: typeof TOL }> =
    [];
  const argmaxChecks: Array<
    { label: string; y: GPUBuffer; best: GPUBuffer; mm: Matmul; first: number; n: number }
  > = [];
  const pass = enc.beginComputePass();
  for (const c of cases) {
    const { N, K, M, dtype } = c;
    const wVals = randomNormal(seed++, M * K, 1 / Math.sqrt(K));
    if (c.dupRows) { for (let m = 1; m < M; m++) wVals.copyWithin(m * K, 0, K); }
    const raw = encodeFromF32(dtype, wVals) as Uint8Array<ArrayBuffer>;
    const quant = c.quant ?? null;
    const wDec = quant ? quantizeValues(quant, decodeToF32(dtype, raw), M, K) : decodeToF32(dtype, raw);
    const maxBinding = c.partRows
      ? c.partRows * rowBytesFor(dtype, K, quant)
      : gpu.limits.maxStorageBufferBindingSize;
    const storage = {
      quant,
      storage: c.texture ? "texture" as const : "buffer" as const,
      // 64 texels per texture row: rows of the matrix wrap across texture rows, writes start mid-row.
      maxTextureDimension: 64,
    };
    let w;
    if (c.pieces) {
      w = createMatrix(device, `w${seed}`, dtype, M, K, maxBinding, storage);
      const rowBytes = raw.byteLength / M, ends = [...c.pieces.slice(1), M];
      c.pieces.forEach((r, i) => writeRows(device, w!, r, raw.slice(r * rowBytes, ends[i] * rowBytes)));
    } else w = uploadMatrix(device, `w${seed}`, dtype, M, K, raw, maxBinding, storage);
    if (c.partRows && w.parts.length < 3) throw new Error(`expected ≥3 parts, got ${w.parts.length}`);
    const xVals = randomNormal(seed++, N * K) as Float32Array<ArrayBuffer>;
    const yOffset = c.yOffset ?? 0;
    const outCols = c.swiglu ? M / 2 : M, outOffset = c.swiglu ? yOffset / 2 : yOffset;
    const yStride = outOffset + outCols + 3;
    // 8 rows more than the step's: a kernel that computes more rows than the step has must not store them.
    const y0 = randomNormal(seed++, (N + 8) * yStride) as Float32Array<ArrayBuffer>;
    const rnd = mulberry32(seed++);
    const scale = new Float32Array(N).map(() => rnd());
    const use = c.windowed ? "windowed" : "storage";
    const x = storageBuffer(device, "x", N * K * 4 + (c.xRoom ?? 0), use);
    const texRows = c.textureRows ?? (N === 1 ? 1 : FEW_ROW_MAX);
    // NaN past the rows (the engine's x buffers hold other rows there): a kernel must not read it.
    device.queue.writeBuffer(x, 0, new Float32Array(x.size / 4).fill(NaN));
    if (!c.xTexture || N === 1 || texRows < N) device.queue.writeBuffer(x, 0, xVals);
    const y = bufferFrom(device, "y", y0);
    const rowScale = bufferFrom(device, "row_scale", scale);
    const step = bufferFrom(device, "step", new Uint32Array([N, 0, 0, 0]));
    const normW = new Float32Array(K).map(() => 0.5 + rnd());
    const opts: MatmulOptions = {
      ...c.opts,
      swiglu: c.swiglu,
      norm: c.norm ? { weight: bufferFrom(device, "norm_w", normW, use), eps: 1e-5 } : undefined,
    };
    let xTexture: GPUTexture | undefined;
    if (c.xTexture) {
      xTexture = rowTexture(device, "x_tex", K, texRows);
      const texels = xTexture.width * 4, rows = new Float32Array(texels * texRows).fill(NaN);
      // With a norm, the texture's producer applied it (rmsnorm.wgsl TEXTURE): the matmul must not again.
      const xn = c.norm ? referenceRmsNorm(xVals, N, K, normW, 1e-5) : xVals;
      for (let n = 0; n < Math.min(N, texRows); n++) rows.set(xn.subarray(n * K, (n + 1) * K), n * texels);
      device.queue.writeTexture({ texture: xTexture }, rows, { bytesPerRow: texels * 4 }, [
        xTexture.width,
        texRows,
      ]);
    }
    const argmax = c.argmax
      ? storageBuffer(device, "best", (Math.ceil(M / 4) + w.parts.length) * 8)
      : undefined;
    const mm = new Matmul(kernels, w, { x, y, yStride, yOffset, step, rowScale, xTexture, argmax }, opts);
    if (argmax && mm.argmaxPairs === 0) throw new Error(`argmax planned without pairs: ${mm.describe()}`);
    // One windowed row of x that fits the uniform window takes gemv_tex; anything else gemm_tex.
    if (mm.uniformX !== (!!c.windowed && !!c.texture && K <= 16384)) {
      throw new Error(`one-row kernel ${mm.uniformX ? "planned" : "not planned"}: ${mm.describe()}`);
    }
    const want = textureKernel(c);
    if (want && mm.kernelFor(N) !== want) throw new Error(`N=${N} K=${K}: not ${want}: ${mm.describe()}`);
    if (c.rowGroups !== undefined && mm.rowGroupsFor(N) !== c.rowGroups) {
      throw new Error(`N=${N} K=${K}: row groups ${mm.rowGroupsFor(N)} ≠ ${c.rowGroups}: ${mm.describe()}`);
    }
    mm.encode(pass, N);

    const xNormed = c.norm ? referenceRmsNorm(xVals, N, K, normW, 1e-5) : xVals;
    // gemv_tex XQ: x quantized to int8 blocks on the GPU (quantize_x), modelled exactly (TOL) where x reaches
    // the quantizer as the reference has it (no norm, or already normalized in the row texture).
    const xq = mm.describe().startsWith("quantize_x");
    if (xq !== !!c.quantizedX) {
      throw new Error(`quantize_x ${xq ? "planned" : "not planned"}: ${mm.describe()}`);
    }
    const xRef = xq ? quantizeXRow(xNormed) : xNormed;
    let ref = referenceMatmul(xRef, N, K, wDec, M);
    if (xq) xqBound(xNormed, wDec, ref, K, c);
    if (c.swiglu) ref = referenceSwiglu(ref, N, outCols);
    const expected = y0.slice();
    const alpha = c.opts.alpha ?? 1;
    for (let n = 0; n < N; n++) {
      const s = c.opts.scaleMode === 1 ? scale[n] : c.opts.scaleMode === 2 ? 1 - scale[n] : 1;
      for (let m = 0; m < outCols; m++) {
        const v = ref[n * outCols + m] * alpha * s;
        const i = n * yStride + outOffset + m;
        expected[i] = c.opts.accumulate ? y0[i] + v : v;
      }
    }
    const fused = `${c.norm ? " norm" : ""}${c.swiglu ? " swiglu" : ""}`;
    const label = `${dtype}${quant ? ` ${quant}` : ""} N=${N} K=${K} M=${M}${fused} ${
      JSON.stringify(c.opts)
    }${c.partRows ? ` parts=${w.parts.length}` : ""} [${mm.describe()}]`;
    checks.push({ label, y, expected, mm, tol: xq && c.norm && !c.xTexture ? TOL_XQ_NORM : TOL });
    if (argmax) argmaxChecks.push({ label, y, best: argmax, mm, first: outOffset, n: outCols });
  }
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  const outs = await Promise.all(checks.map((c) => readBuffer(device, c.y, c.expected.byteLength)));
  checks.forEach((c, i) => assertClose(new Float32Array(outs[i]), c.expected, c.tol, c.label));
  for (const c of argmaxChecks) {
    // The pairs, combined as sample.wgsl does, against the outputs the kernel stored.
    const y = new Float32Array(await readBuffer(device, c.y, (c.first + c.n) * 4));
    let want = c.first;
    for (let m = c.first; m < c.first + c.n; m++) if (f2key(y[m]) > f2key(y[want])) want = m;
    const pairs = new Uint32Array(await readBuffer(device, c.best, c.mm.argmaxPairs * 8));
    let bk = 0, bi = -1;
    for (let q = 0; q < c.mm.argmaxPairs; q++) {
      if (bi < 0 || pairs[2 * q] > bk) [bk, bi] = [pairs[2 * q], pairs[2 * q + 1]];
    }
    if (bi !== want || bk !== f2key(y[want])) {
      throw new Error(`argmax ${bi} (key ${bk}) ≠ ${want} (key ${f2key(y[want])}): ${c.label}`);
    }
  }
}

/**
 * Accumulate and scale mode are pipeline constants, so they follow K (one pipeline per kernel and K keeps
 * llvmpipe's compile time down): K 7 plain store, 64 accumulate × row_scale, 100 store × (1 − row_scale),
 * 257 accumulate (K 7 and 257 also take the unaligned-x path). Alpha and y offsets (uniforms) cycle with i.
 */
function flavour(
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

function gemvCases([dtype, quant]: [DType, QuantFormat | null], variant: Partial<MatmulOptions>): Case[] {
  const cases: Case[] = [];
  let i = 0;
  for (const K of KS) {
    for (const M of MS) {
      for (const N of [1, 2, 3, 6]) {
        const f = flavour(K, i++, M);
        // N = 6 with gemvMaxRows 8: two blocks of activation rows in the GEMV grid.
        const opts = { ...f.opts, ...variant, gemvMaxRows: 8 };
        cases.push({ N, K, M, dtype, quant, opts, yOffset: f.yOffset, norm: f.norm, swiglu: f.swiglu });
      }
    }
  }
  return cases;
}

function gemmCases([dtype, quant]: [DType, QuantFormat | null], variant: Partial<MatmulOptions>): Case[] {
  const cases: Case[] = [];
  let i = 0;
  for (const K of KS) {
    for (const M of MS) {
      for (const N of [5, 17, 70]) {
        const f = flavour(K, i++, M);
        const opts = { ...f.opts, ...variant, gemvMaxRows: 1 };
        cases.push({ N, K, M, dtype, quant, opts, yOffset: f.yOffset, norm: f.norm, swiglu: f.swiglu });
      }
    }
  }
  return cases;
}

function splitCases(
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
const inTextures = (cases: Case[], windowed = true): Case[] =>
  cases.map((c, i) => ({ ...c, texture: true, windowed, opts: { ...c.opts, directGroups: 1 + (i % 3) } }));

/**
 * Rows written in pieces that start and end inside 4-row groups (texture parts interleave each group's rows),
 * as a stacked [q; k; v; router] matrix is, in buffers and in textures, split or not.
 */
const pieceCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
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
const windowEdgeCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
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
const rowTextureCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] => {
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
const fewRowCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] => {
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
const fewRowEdgeCases = ([dtype, quant]: [DType, QuantFormat | null]): Case[] =>
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
const quantizedXCases = (quant: QuantFormat): Case[] => {
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

const name = (v: Partial<MatmulOptions>) =>
  Object.entries(v).map(([k, val]) => (typeof val === "boolean" ? (val ? k : `no-${k}`) : val)).join(" ");

for (const family of await families()) {
  Deno.test(`matmul (${family} family)`, async (t) => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    for (const format of FORMATS) {
      const [dtype, quant] = format;
      const fname = quant ? `${dtype}→${quant}` : dtype;
      const gemvs: Partial<MatmulOptions>[] = [];
      const gemms: Partial<MatmulOptions>[] = [{}]; // the tiled GEMM
      for (const gemv of ["coop", "row"] as const) gemvs.push({ gemv });
      for (const v of gemvs) {
        await t.step(`GEMV ${fname} ${name(v)}`, () => runCases(gpu, kernels, gemvCases(format, v)));
      }
      for (const v of gemms) {
        await t.step(`GEMM ${fname} tiled`, () => runCases(gpu, kernels, gemmCases(format, v)));
      }
      if (dtype === "F32") {
        // More than 65535 workgroups of 8 rows: the grid wraps into z.
        const wrap: Case = { N: 2, K: 4, M: 600_000, dtype, opts: { gemv: "coop", gemvMaxRows: 8 } };
        await t.step("GEMV grid wrap (600000 rows)", () => runCases(gpu, kernels, [wrap]));
      }
      await t.step(
        `split matrix ${fname}`,
        () => runCases(gpu, kernels, splitCases(format, [...gemvs, ...gemms])),
      );
      await t.step(`texture weights (direct kernel) ${fname}`, async () => {
        await runCases(gpu, kernels, inTextures([...gemvCases(format, {}), ...gemmCases(format, {})]));
        // Few rows of x in plain storage buffers: gemm_tex's GEMV plan (windowed, they take gemv_tex_rows).
        await runCases(gpu, kernels, inTextures(gemvCases(format, {}), false));
        // { gemv } routes up to 70 rows to the GEMV plan (NT = 4), {} every row to the GEMM plan (NT = 8);
        // x in plain storage buffers: the general path for every row count.
        await runCases(gpu, kernels, inTextures(splitCases(format, [{ gemv: "row" }, {}]), false));
        await runCases(gpu, kernels, windowEdgeCases(format));
      });
      await t.step(`texture weights, 2-8 windowed rows (gemv_tex_rows) ${fname}`, async () => {
        await runCases(gpu, kernels, fewRowCases(format));
        await runCases(gpu, kernels, fewRowEdgeCases(format));
      });
      await t.step(
        `texture weights, x from a row texture, argmax pairs ${fname}`,
        () => runCases(gpu, kernels, rowTextureCases(format)),
      );
      await t.step(`rows written in pieces ${fname}`, () => runCases(gpu, kernels, pieceCases(format)));
    }
    for (const quant of ["q8", "q4"] as const) {
      await t.step(`${quant}, x quantized to int8 blocks (quantize_x + gemv_tex XQ)`, async () => {
        await runCases(gpu, kernels, quantizedXCases(quant));
      });
    }
  });
}

/**
 * The ROPE epilogue: [q; k; v; extra] rows with q and k in rotation pairs; q rotated into y, k rotated and v
 * copied into the caches at each row's (slot, pos), the extra rows (a router's W_enc) into y as they are.
 * Reference: the plain matmul, then the pair rotation.
 */
async function ropeCase(
  gpu: GpuContext,
  kernels: KernelCache,
  [dtype, quant]: [DType, QuantFormat | null],
  N: number,
  norm: boolean,
  storage: WeightStorage,
  gemv: GemvVariant = "coop",
  kvF16 = false,
) {
  const device = gpu.device;
  const hd = 8, nH = 3, nKV = 2, K = 36, ctx = 10, slots = 2, extra = 6;
  const kvBytes = kvF16 ? 2 : 4;
  const qRows = nH * hd, kvDim = nKV * hd, M = qRows + 2 * kvDim + extra;
  const raw = encodeFromF32(dtype, randomNormal(seed++, M * K, 1 / Math.sqrt(K))) as Uint8Array<ArrayBuffer>;
  const wDec = quant ? quantizeValues(quant, decodeToF32(dtype, raw), M, K) : decodeToF32(dtype, raw);
  // 16-row parts: a part boundary inside q and one inside k.
  const w = uploadMatrix(device, "wqkv", dtype, M, K, raw, 16 * rowBytesFor(dtype, K, quant), {
    quant,
    storage,
    maxTextureDimension: 64,
  });
  const xVals = randomNormal(seed++, N * K) as Float32Array<ArrayBuffer>;
  const normW = new Float32Array(K).map((_, i) => 0.5 + (i % 7) / 7);
  const rows = Array.from({ length: N }, (_, n) => [n % slots, (3 * n + 1) % ctx]);
  const cs = randomNormal(seed++, ctx * hd) as Float32Array<ArrayBuffer>; // (cos, sin) pairs, any values
  const yStride = M;
  const y = storageBuffer(device, "y", N * yStride * 4);
  const kc = storageBuffer(device, "k", slots * ctx * kvDim * kvBytes),
    vc = storageBuffer(device, "v", slots * ctx * kvDim * kvBytes);
  // Windowed as the engine makes them: one row takes the uniform-x path.
  const x = storageBuffer(device, "x", N * K * 4, "windowed");
  device.queue.writeBuffer(x, 0, xVals);
  const step = bufferFrom(device, "step", new Uint32Array([N, 0, 0, 0]));
  const mm = new Matmul(kernels, w, { x, y, yStride, step }, {
    gemv,
    norm: norm ? { weight: bufferFrom(device, "norm_w", normW, "windowed"), eps: 1e-5 } : undefined,
    rope: {
      rows: bufferFrom(device, "rows", Uint32Array.from(rows.flat())),
      cosSin: bufferFrom(device, "cos_sin", cs),
      kCache: kc,
      vCache: vc,
      headDim: hd,
      qRows,
      kvDim,
      ctx,
      kvF16,
    },
  });
  const want = textureKernel({ N, K, texture: storage === "texture", windowed: true });
  if (want && mm.kernelFor(N) !== want) throw new Error(`rope N=${N}: not ${want}: ${mm.describe()}`);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  mm.encode(pass, N);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();

  const xRef = norm ? referenceRmsNorm(xVals, N, K, normW, 1e-5) : xVals;
  const ref = referenceMatmul(xRef, N, K, wDec, M);
  const yExp = new Float32Array(N * yStride), kExp = new Float32Array(slots * ctx * kvDim);
  const vExp = new Float32Array(slots * ctx * kvDim);
  rows.forEach(([slot, pos], n) => {
    const v = ref.subarray(n * M, (n + 1) * M).slice();
    for (let m = 0; m < qRows + kvDim; m += 2) {
      const t = pos * (hd / 2) + (m % hd) / 2, c = cs[2 * t], sn = cs[2 * t + 1];
      const [a, b] = [v[m], v[m + 1]];
      v[m] = a * c - b * sn;
      v[m + 1] = b * c + a * sn;
    }
    yExp.set(v.subarray(0, qRows), n * yStride);
    yExp.set(v.subarray(qRows + 2 * kvDim), n * yStride + qRows + 2 * kvDim);
    kExp.set(v.subarray(qRows, qRows + kvDim), (slot * ctx + pos) * kvDim);
    vExp.set(v.subarray(qRows + kvDim, qRows + 2 * kvDim), (slot * ctx + pos) * kvDim);
  });
  const [yOut, kOut, vOut] = await Promise.all([y, kc, vc].map((b) => readBuffer(device, b, b.size)));
  const label = `rope ${storage} ${gemv} ${dtype}${quant ? ` ${quant}` : ""} N=${N}${norm ? " norm" : ""}` +
    `${kvF16 ? " f16 KV" : ""} (${mm.describe()})`;
  const yGot = new Float32Array(yOut);
  for (let n = 0; n < N; n++) {
    assertClose(
      yGot.subarray(n * yStride, n * yStride + qRows),
      yExp.subarray(n * yStride, n * yStride + qRows),
      TOL,
      `${label} q`,
    );
    assertClose(
      yGot.subarray(n * yStride + M - extra, (n + 1) * yStride),
      yExp.subarray(n * yStride + M - extra, (n + 1) * yStride),
      TOL,
      `${label} rows after v`,
    );
  }
  // f16: against the reference rounded to f16, within one f16 step (rounding f32 values that straddle an edge).
  const cache = (b: ArrayBuffer) => kvF16 ? decodeToF32("F16", new Uint8Array(b)) : new Float32Array(b);
  const want16 = (a: Float32Array) => kvF16 ? new Float32Array(new Float16Array(a)) : a;
  const kvTol = kvF16 ? { atol: 1e-4, rtol: 1e-3 } : TOL;
  assertClose(cache(kOut), want16(kExp), kvTol, `${label} k cache`);
  assertClose(cache(vOut), want16(vExp), kvTol, `${label} v cache`);
}

for (const family of await families()) {
  Deno.test(`matmul (${family} family): RoPE + KV-write epilogue, every kernel`, async () => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    // Textures: gemv_tex (1 row), gemv_tex_rows (2, 3 and 5: rows of their own slot and position), the direct
    // kernel (9); buffers: the coop and row GEMVs (1, 5) and the tiled GEMM (9).
    const layouts: [WeightStorage, GemvVariant][] = [["texture", "coop"], ["buffer", "coop"], [
      "buffer",
      "row",
    ]];
    for (const format of FORMATS) {
      for (const [storage, gemv] of layouts) {
        const few = storage === "texture" ? [[2, false], [3, true]] as const : [];
        for (const [N, norm] of [[1, true], ...few, [5, false], [9, true]] as const) {
          await ropeCase(gpu, kernels, format, N, norm, storage, gemv);
          // An f16 KV cache: k and v written in pairs, one f16 word each (one weight format is enough).
          if (format === FORMATS[0]) await ropeCase(gpu, kernels, format, N, norm, storage, gemv, true);
        }
      }
    }
  });
}

Deno.test("matmul: ropePairRows puts each head's rotation pairs side by side", () => {
  // 2 heads of head_dim 4, one byte per row: rows 0..7 → head 0: 0 2 1 3, head 1: 4 6 5 7.
  const out = ropePairRows(Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 8, 4);
  assertClose(Float32Array.from(out), [0, 2, 1, 3, 4, 6, 5, 7], { atol: 0, rtol: 0 }, "pairs");
});

Deno.test("matmul: referenceMatmul", () => {
  // [2, 3] · [2, 3]ᵀ
  const x = new Float32Array([1, 2, 3, -1, 0, 2]);
  const w = new Float32Array([1, 0, 1, 0.5, 0.5, 0.5]);
  const y = referenceMatmul(x, 2, 3, w, 2);
  assertClose(y, [4, 3, 1, 0.5], { atol: 1e-6, rtol: 0 }, "reference");
});

Deno.test("matmul: fewRowGroups splits a few-row step into row groups that fit x's window", () => {
  const show = (n: number, K: number, xBytes: number, sizes = [2, 3, 4]) =>
    fewRowGroups(n, K, xBytes, sizes)?.map((g) => `${g.nr}@${g.row0}:${g.xOffset}+${g.xBase}`).join(" ") ??
      "none";
  const want = (got: string, expected: string, label: string) => {
    if (got !== expected) throw new Error(`${label}: ${got} ≠ ${expected}`);
  };
  const big = 1 << 20;
  want(show(2, 1024, big), "2@0:0+0", "2 rows");
  want(show(3, 1024, big), "3@0:0+0", "3 rows: NR 3");
  want(show(3, 1024, big, [2, 4]), "4@0:0+0", "3 rows without NR 3");
  // 6 rows of 3072 (18432 floats) in one window would not fit: 3+3, the second window at row 3's first byte.
  want(show(6, 3072, big), "3@0:0+0 3@3:36864+0", "6 rows of 3072");
  want(show(5, 1024, big), "3@0:0+0 2@3:12288+0", "5 rows");
  // Row 4 of 2300 starts at byte 36800: the window at 36608, the row 48 floats in.
  want(show(7, 2300, big), "4@0:0+0 3@4:36608+48", "7 rows of 2300");
  want(show(8, 1024, big, [2, 4, 8]), "8@0:0+0", "8 rows with NR 8");
  // x of just 5 rows of 1024 (64 KiB, the least a window needs): the second window cannot move.
  want(show(5, 1024, 65536), "3@0:0+0 2@3:0+3072", "x without room");
  // 3 rows of 8000: 2 rows per window at most; the second group's window must leave room in x.
  want(show(3, 8000, big), "2@0:0+0 2@2:64000+0", "3 rows of 8000");
  want(show(3, 8000, 96000), "none", "3 rows of 8000, no room");
  want(show(2, 8200, big), "none", "2 rows of 8200");
});

Deno.test("matmul: steps of 2-8 windowed rows on texture weights take gemv_tex_rows (plan)", async () => {
  const gpu = await testGpu("plain");
  const kernels = new KernelCache(gpu);
  const device = gpu.device;
  const M = 40, bytes = 1 << 30;
  const y = storageBuffer(device, "y", 9 * M * 4);
  const step = bufferFrom(device, "step", new Uint32Array([9, 0, 0, 0]));
  // The kernel of each step size 1..9.
  const plan = (
    K: number,
    storage: WeightStorage,
    x: "windowed" | "storage",
    norm?: "windowed" | "storage",
  ) => {
    const raw = encodeFromF32("BF16", randomNormal(seed++, M * K)) as Uint8Array<ArrayBuffer>;
    const w = uploadMatrix(device, "w", "BF16", M, K, raw, bytes, { storage, maxTextureDimension: 64 });
    const weight = norm ? storageBuffer(device, "norm_w", K * 4, norm) : undefined;
    const io = { x: storageBuffer(device, "x", 9 * K * 4, x), y, yStride: M, step };
    const mm = new Matmul(kernels, w, io, { norm: weight ? { weight, eps: 1e-5 } : undefined });
    return {
      kernels: [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => mm.kernelFor(n)).join(" "),
      describe: mm.describe(),
    };
  };
  const expect = (got: { kernels: string; describe: string }, want: string, label: string) => {
    if (got.kernels !== want) throw new Error(`${label}: ${got.kernels} ≠ ${want} (${got.describe})`);
  };
  const rows = (n: number) => Array(n).fill("gemv_tex_rows").join(" ");
  const gemmTex = (n: number) => Array(n).fill("gemm_tex").join(" ");
  const windowed = plan(1024, "texture", "windowed");
  expect(windowed, `gemv_tex ${rows(7)} gemm_tex`, "texture, windowed x, K 1024");
  if (!windowed.describe.includes("gemv_tex_rows 2-8 rows")) {
    throw new Error(`describe: ${windowed.describe}`);
  }
  expect(
    plan(1024, "texture", "windowed", "windowed"),
    `gemv_tex ${rows(7)} gemm_tex`,
    "windowed norm weights",
  );
  // 4 rows of 4096 fill the window; 5 to 8 rows take two row groups, the second's window from its first row.
  const k4096 = plan(4096, "texture", "windowed");
  expect(k4096, `gemv_tex ${rows(7)} gemm_tex`, "K 4096");
  if (!k4096.describe.includes("(row groups 5: 3+2, 6: 3+3, 7: 4+3, 8: 4+4)")) {
    throw new Error(`describe: ${k4096.describe}`);
  }
  // 4 rows of 2816 fit (11264 floats), 5 to 8 in two row groups.
  expect(plan(2816, "texture", "windowed"), `gemv_tex ${rows(7)} gemm_tex`, "K 2816");
  expect(plan(16384, "texture", "windowed"), `gemv_tex ${gemmTex(8)}`, "K 16384");
  // x or the norm weights without a uniform view, or buffer weights: as before.
  expect(plan(1024, "texture", "storage"), gemmTex(9), "x in a plain storage buffer");
  expect(plan(1024, "texture", "windowed", "storage"), gemmTex(9), "norm weights in a plain storage buffer");
  expect(plan(1024, "buffer", "windowed"), `${Array(8).fill("matmul").join(" ")} gemm`, "buffer weights");
  await kernels.checkErrors();
});
