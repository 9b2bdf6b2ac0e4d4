/**
 * The matmul's ROPE epilogue against the TypeScript reference, for each kernel family, weight format and
 * kernel (gemv_tex, gemv_tex_rows, the direct texture kernel, the coop and row GEMVs, the tiled GEMM), with
 * and without the fused norm, with f32 and f16 KV caches; and ropePairRows, the layout that puts each
 * head's rotation pairs side by side.
 */

import { Matmul } from "../src/ops/matmul/matmul.ts";
import type { GemvVariant } from "../src/ops/matmul/options.ts";
import { referenceMatmul } from "../src/ops/matmul/reference.ts";
import { referenceRmsNorm } from "../src/ops/norm/reference.ts";
import { ropePairRows } from "../src/model/layout.ts";
import type { GpuContext } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { rowBytesFor, uploadMatrix, type WeightStorage } from "../src/gpu/matrix.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { decodeToF32, type DType, encodeFromF32 } from "../src/model/dtype.ts";
import { type QuantFormat, quantizeValues } from "../src/model/quant.ts";
import { randomNormal } from "../src/util/random.ts";
import { assertClose, families, testGpu } from "./harness.ts";
import { FORMATS, nextSeed, textureKernel, TOL } from "./matmul_cases.ts";

/** [q; k; v; extra] rows: 3 q heads and 2 K/V heads of 8, then 6 extra rows; K 36; 2 slots of context 10. */
const hd = 8, nH = 3, nKV = 2, K = 36, ctx = 10, slots = 2, extra = 6;
const qRows = nH * hd, kvDim = nKV * hd, M = qRows + 2 * kvDim + extra;
/** y's row stride: one row of the matrix's outputs. */
const yStride = M;

/** The random [q; k; v; extra] weights in 16-row parts (a part boundary inside q and one inside k). */
function ropeWeights(
  device: GPUDevice,
  [dtype, quant]: [DType, QuantFormat | null],
  storage: WeightStorage,
) {
  const raw = encodeFromF32(dtype, randomNormal(nextSeed(), M * K, 1 / Math.sqrt(K))) as Uint8Array<
    ArrayBuffer
  >;
  const wDec = quant ? quantizeValues(quant, decodeToF32(dtype, raw), M, K) : decodeToF32(dtype, raw);
  const w = uploadMatrix(device, "wqkv", dtype, M, K, raw, 16 * rowBytesFor(dtype, K, quant), {
    quant,
    storage,
    maxTextureDimension: 64,
  });
  return { w, wDec };
}

/**
 * The reference: the plain matmul's rows with q and k rotated in pairs at each row's position; k and v at the
 * row's (slot, pos) in the caches, q and the extra rows in y.
 */
function ropeExpected(ref: Float32Array, rows: number[][], cs: Float32Array) {
  const N = rows.length;
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
  return { yExp, kExp, vExp };
}

/** y's q and extra rows, and the K and V caches, against the reference. */
function checkRope(
  label: string,
  kvF16: boolean,
  [yOut, kOut, vOut]: ArrayBuffer[],
  { yExp, kExp, vExp }: ReturnType<typeof ropeExpected>,
): void {
  const yGot = new Float32Array(yOut);
  for (let n = 0; n < yExp.length / yStride; n++) {
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

/**
 * The ROPE epilogue: [q; k; v; extra] rows with q and k in rotation pairs; q rotated into y, k rotated and v
 * copied into the caches at each row's (slot, pos), the extra rows (a router's W_enc) into y as they are.
 * Reference: the plain matmul, then the pair rotation.
 */
async function ropeCase(
  gpu: GpuContext,
  kernels: KernelCache,
  format: [DType, QuantFormat | null],
  N: number,
  norm: boolean,
  storage: WeightStorage,
  gemv: GemvVariant = "coop",
  kvF16 = false,
) {
  const device = gpu.device;
  const [dtype, quant] = format;
  const kvBytes = kvF16 ? 2 : 4;
  const { w, wDec } = ropeWeights(device, format, storage);
  const xVals = randomNormal(nextSeed(), N * K) as Float32Array<ArrayBuffer>;
  const normW = new Float32Array(K).map((_, i) => 0.5 + (i % 7) / 7);
  const rows = Array.from({ length: N }, (_, n) => [n % slots, (3 * n + 1) % ctx]);
  const cs = randomNormal(nextSeed(), ctx * hd) as Float32Array<ArrayBuffer>; // (cos, sin) pairs, any values
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
  const expected = ropeExpected(referenceMatmul(xRef, N, K, wDec, M), rows, cs);
  const outs = await Promise.all([y, kc, vc].map((b) => readBuffer(device, b, b.size)));
  const label = `rope ${storage} ${gemv} ${dtype}${quant ? ` ${quant}` : ""} N=${N}${norm ? " norm" : ""}` +
    `${kvF16 ? " f16 KV" : ""} (${mm.describe()})`;
  checkRope(label, kvF16, outs, expected);
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
