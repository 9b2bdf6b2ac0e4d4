/**
 * Matmul plans and references without a GPU run of the kernels: referenceMatmul, how fewRowGroups splits a
 * few-row step into row groups that fit x's window, and the kernel each step size takes on texture weights
 * with windowed x (gemv_tex, gemv_tex_rows, gemm_tex) or otherwise.
 */

import { Matmul } from "../src/ops/matmul/matmul.ts";
import { fewRowGroups } from "../src/ops/matmul/plan.ts";
import { referenceMatmul } from "../src/ops/matmul/reference.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { uploadMatrix, type WeightStorage } from "../src/gpu/matrix.ts";
import { bufferFrom, storageBuffer } from "../src/gpu/buffers.ts";
import { encodeFromF32 } from "../src/model/dtype.ts";
import { randomNormal } from "../src/util/random.ts";
import { assertClose, testGpu } from "./harness.ts";
import { nextSeed } from "./matmul_cases.ts";

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
    const raw = encodeFromF32("BF16", randomNormal(nextSeed(), M * K)) as Uint8Array<ArrayBuffer>;
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
