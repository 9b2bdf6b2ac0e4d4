/**
 * Matmul kernels (GEMV, GEMM; every variant) against the TypeScript reference, for each kernel
 * family and weight format (F32, F16, BF16, and BF16 quantized to q8 and q4 at upload, whose reference is the
 * dequantized weights), on odd sizes, with accumulate, row scales, alpha, y offsets and split matrices.
 * The cases: test/matmul_cases.ts and test/matmul_texture_cases.ts; the runner: test/matmul_run.ts. The RoPE
 * epilogue and the plans of few-row steps: test/matmul_rope.test.ts and test/matmul_plan.test.ts.
 */

import type { MatmulOptions } from "../src/ops/matmul/options.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { families, testGpu } from "./harness.ts";
import { type Case, FORMATS, gemmCases, gemvCases, inTextures, splitCases } from "./matmul_cases.ts";
import {
  fewRowCases,
  fewRowEdgeCases,
  pieceCases,
  quantizedXCases,
  rowTextureCases,
  windowEdgeCases,
} from "./matmul_texture_cases.ts";
import { runCases } from "./matmul_run.ts";

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
