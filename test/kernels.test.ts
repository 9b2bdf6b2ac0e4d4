/**
 * Each small kernel against its plain-TypeScript reference, on both kernel families, at sizes that
 * do not divide the workgroup (rope_heads in rope_heads.test.ts).
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { assertClose, families, testGpu } from "./harness.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { uploadMatrix } from "../src/gpu/matrix.ts";
import {
  bufferFrom,
  readBuffer,
  readRowTexture,
  rowTexture,
  storageBuffer,
  uniformData,
} from "../src/gpu/buffers.ts";
import { decodeToF32, type DType, DTYPE_CODE, encodeFromF32 } from "../src/model/dtype.ts";
import { randomNormal } from "../src/util/random.ts";
import { rmsnorm } from "./reference.ts";
import { quantizedXWords } from "../src/ops/matmul/reference.ts";
import { quantizedRowTexture } from "../src/ops/matmul/quantize_x.ts";

const TOL = { atol: 1e-4, rtol: 1e-4 };

async function run(
  kernels: KernelCache,
  name: string,
  constants: Record<string, number>,
  buffers: (GPUBuffer | GPUTextureView)[],
  grid: [number, number?, number?],
) {
  const device = kernels.gpu.device;
  const k = kernels.get(name, constants);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(k.pipeline);
  pass.setBindGroup(0, k.bind(buffers));
  pass.dispatchWorkgroups(grid[0], grid[1] ?? 1, grid[2] ?? 1);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
}

const u = (device: GPUDevice, fields: Array<["u32" | "f32", number]>) =>
  bufferFrom(device, "params", new Uint8Array(uniformData(fields)), "uniform");
const f32 = async (device: GPUDevice, b: GPUBuffer, n: number) =>
  new Float32Array(await readBuffer(device, b, n * 4));

for (const family of await families()) {
  Deno.test(`embed gather (${family}): every dtype, split embedding`, async () => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    const device = gpu.device;
    for (const dtype of ["F32", "F16", "BF16"] as DType[]) {
      const vocab = 37, H = 13, n = 5;
      const raw = encodeFromF32(dtype, randomNormal(1, vocab * H));
      const values = decodeToF32(dtype, raw);
      const m = uploadMatrix(device, "E", dtype, vocab, H, raw, 16 * 10); // ≥3 parts
      if (m.parts.length < 3) throw new Error("expected a split embedding");
      const tokens = [0, 36, 12, 12, 25];
      const x = storageBuffer(device, "x", n * H * 4);
      const step = bufferFrom(device, "step", new Uint32Array([n, 0, 0, 0]));
      const tok = bufferFrom(device, "tok", Uint32Array.from(tokens));
      for (const part of m.parts) {
        await run(kernels, "embed", { W_DTYPE: DTYPE_CODE[dtype] }, [
          u(device, [["u32", H], ["u32", part.firstRow], ["u32", part.rows], ["u32", m.rowStride]]),
          step,
          tok,
          part.buffer!,
          x,
        ], [n]);
      }
      const expected = new Float32Array(tokens.flatMap((t) => [...values.subarray(t * H, (t + 1) * H)]));
      assertClose(await f32(device, x, n * H), expected, { atol: 0, rtol: 0 }, `embed ${dtype}`);
    }
  });

  Deno.test(`rmsnorm (${family}): all rows and gathered rows`, async () => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    const device = gpu.device;
    const H = 131, n = 7, eps = 1e-5;
    const xs = randomNormal(2, n * H, 3);
    const w = randomNormal(3, H);
    const outRows = [6, 0, 3];
    // The GPUs' workgroup and the software GPUs' (rows wider than the workgroup either way); with the row
    // texture output (TEXTURE: each row the texture has again as texels, zero past H: 1 of 7, 4 of 7, 2 of 3
    // gathered) and without (the texture is left alone). QUANT: row 0 also in int8 blocks, exactly the blocks
    // of the row the texture holds (quantize_x's layout), paired for q4 or (Q8) q8 weights.
    const cases = [
      [false, 64, false, "q4", 4],
      [true, 64, true, "q4", 2],
      [false, 8, true, "q8", 4],
      [false, 8, true, "q4", 1],
      [true, 8, false, "q4", 1],
    ] as const;
    for (const [gather, WG, texture, format, texRows] of cases) {
      const y = storageBuffer(device, "y", n * H * 4);
      const tex = rowTexture(device, "x_tex", H, texRows);
      const fill = new Float32Array(tex.width * 4 * texRows).fill(7);
      device.queue.writeTexture({ texture: tex }, fill, { bytesPerRow: tex.width * 16 }, [
        tex.width,
        texRows,
      ]);
      const xq = quantizedRowTexture(device, H, "xq", GPUTextureUsage.COPY_SRC);
      await run(kernels, "rmsnorm", { WG }, [
        u(device, [["u32", H], ["f32", eps], [
          "u32",
          (gather ? 1 : 0) | (texture ? 6 : 0) | (texture && format === "q8" ? 8 : 0),
        ]]),
        bufferFrom(device, "step", new Uint32Array([n, outRows.length, 0, 0])),
        bufferFrom(device, "x", xs),
        bufferFrom(device, "w", w),
        y,
        bufferFrom(device, "out_rows", Uint32Array.from(outRows)),
        tex.createView(),
        xq.createView(),
      ], [gather ? outRows.length : n]);
      const src = gather ? outRows : [...Array(n).keys()];
      const expected = new Float32Array(
        src.flatMap((r) => [...rmsnorm(xs.subarray(r * H, (r + 1) * H), w, eps)]),
      );
      const label = `rmsnorm gather=${gather} WG=${WG} texture=${texture}×${texRows} ${format}`;
      const out = await f32(device, y, src.length * H);
      assertClose(out, expected, TOL, label);
      // The texture's rows hold exactly the stored rows (the LM head must see what the buffer path sees).
      const rows = fill.slice();
      for (let r = 0; texture && r < Math.min(texRows, src.length); r++) {
        rows.fill(0, r * tex.width * 4, (r + 1) * tex.width * 4);
        rows.set(out.subarray(r * H, (r + 1) * H), r * tex.width * 4);
      }
      assertClose(await readRowTexture(device, tex), rows, { atol: 0, rtol: 0 }, `${label} texels`);
      if (!texture) continue;
      const words = new Uint32Array((await readRowTexture(device, xq)).buffer);
      assertEquals([...words], [...quantizedXWords(out.subarray(0, H), format)], `${label} int8 blocks`);
    }
  });

  for (
    const [kernel, constants, groups] of [
      ["attention", {}, 4],
      ["attention_serial", { WG: 8 }, 1],
    ] as const
  ) {
    for (const kv of ["f32", "f16"] as const) {
      Deno.test(`${kernel} (${family}, ${kv} KV): causal GQA over the cache, lengths across tile edges`, async () => {
        const gpu = await testGpu(family);
        const kernels = new KernelCache(gpu);
        const device = gpu.device;
        // f16: the serial kernel reads 8 elements a load (head_dim a multiple of 8).
        const nH = 4, nKV = 2, hd = kv === "f16" ? 24 : 12, ctx = 150, slots = 2;
        const cache = kvCache(device, kv, slots * ctx * nKV * hd, 7);
        const rows = [[0, 0], [1, 63], [0, 64], [1, 149], [0, 100]];
        const n = rows.length;
        // q rows inside a wider projection output (the serial kernel's vec4 loads need a multiple of 4).
        const qStride = nH * hd + (kernel === "attention_serial" ? 4 : 5);
        const q = randomNormal(9, n * qStride);
        const out = storageBuffer(device, "out", n * nH * hd * 4);
        const scale = 1 / Math.sqrt(hd);
        const KV_F16 = kv === "f16" ? 1 : 0;
        await run(kernels, kernel, {
          ...constants,
          ...(kernel === "attention_serial" && { HD4: hd / 4 }),
          KV_F16,
        }, [
          u(device, [["u32", nH], ["u32", nKV], ["u32", hd], ["u32", ctx], ["f32", scale], ["u32", qStride]]),
          bufferFrom(device, "step", new Uint32Array([n, 0, 0, 0])),
          bufferFrom(device, "rows", Uint32Array.from(rows.flat())),
          bufferFrom(device, "q", q),
          cache.k,
          cache.v,
          out,
        ], [groups, n]);
        const got = await f32(device, out, n * nH * hd);
        checkAttention(got, { nH, nKV, hd, ctx, qStride, rows, q }, cache, `${kernel} ${kv}`);
      });
    }
  }

  for (const kv of ["f32", "f16"] as const) {
    Deno.test(`attention_split + attention_merge (${family}, ${kv} KV): chunks of the context, empty chunks, GQA`, async () => {
      const gpu = await testGpu(family);
      const kernels = new KernelCache(gpu);
      const device = gpu.device;
      const nH = 4, nKV = 2, hd = kv === "f16" ? 24 : 12, ctx = 300, slots = 2, chunks = 5;
      const cache = kvCache(device, kv, slots * ctx * nKV * hd, 17);
      // Position 0 and 2 leave chunks empty; 299 crosses the 128-position tile inside a chunk.
      const rows = [[0, 0], [1, 2], [0, 130], [1, 299]];
      const n = rows.length;
      const qStride = nH * hd + 4;
      const q = randomNormal(19, n * qStride);
      const parts = storageBuffer(device, "parts", n * nH * chunks * (hd + 2) * 4);
      const out = storageBuffer(device, "out", n * nH * hd * 4);
      const params = u(device, [
        ["u32", nH],
        ["u32", nKV],
        ["u32", hd],
        ["u32", ctx],
        ["f32", 1 / Math.sqrt(hd)],
        ["u32", qStride],
        ["u32", chunks],
        ["u32", 0],
      ]);
      const step = bufferFrom(device, "step", new Uint32Array([n, 0, 0, 0]));
      await run(kernels, "attention_split", { KV_F16: kv === "f16" ? 1 : 0 }, [
        params,
        step,
        bufferFrom(device, "rows", Uint32Array.from(rows.flat())),
        bufferFrom(device, "q", q),
        cache.k,
        cache.v,
        parts,
      ], [nH, chunks, n]);
      await run(kernels, "attention_merge", {}, [params, step, parts, out], [nH, n]);
      const got = await f32(device, out, n * nH * hd);
      checkAttention(got, { nH, nKV, hd, ctx, qStride, rows, q }, cache, `split attention ${kv}`);
    });
  }
}

/**
 * Attention over an f16 cache against the f32 reference: K and V rounded to f16 (relative error ≤ 2^-11)
 * moved these unit-variance outputs by at most 7.4e-4 (1.8902 for 1.8894 at the worst; 0.13 of this bound).
 */
const KV16_VS_F32 = { atol: 2e-3, rtol: 2e-3 };

/** A random K/V cache of `n` elements as the engine stores it (f16: two to a word), and the values it holds. */
function kvCache(device: GPUDevice, kv: "f16" | "f32", n: number, seed: number) {
  const raw = { k: randomNormal(seed, n), v: randomNormal(seed + 1, n) };
  if (kv === "f32") {
    return { raw, held: raw, k: bufferFrom(device, "kc", raw.k), v: bufferFrom(device, "vc", raw.v) };
  }
  const k16 = encodeFromF32("F16", raw.k), v16 = encodeFromF32("F16", raw.v);
  return {
    raw,
    held: { k: decodeToF32("F16", k16), v: decodeToF32("F16", v16) },
    k: bufferFrom(device, "kc", k16),
    v: bufferFrom(device, "vc", v16),
  };
}

/**
 * The kernel's output against the reference on the values the cache holds (tight: the kernel sums them in
 * f32), and for an f16 cache also against the reference on the f32 values it was made from (KV16_VS_F32).
 */
function checkAttention(
  got: Float32Array,
  a: { nH: number; nKV: number; hd: number; ctx: number; qStride: number; rows: number[][]; q: Float32Array },
  cache: ReturnType<typeof kvCache>,
  label: string,
) {
  assertClose(got, attentionReference({ ...a, kc: cache.held.k, vc: cache.held.v }), TOL, label);
  if (cache.held === cache.raw) return;
  assertClose(
    got,
    attentionReference({ ...a, kc: cache.raw.k, vc: cache.raw.v }),
    KV16_VS_F32,
    `${label} vs f32`,
  );
}

/** Causal grouped-query attention of each (slot, pos) row over the cache, in plain TypeScript. */
function attentionReference(a: {
  nH: number;
  nKV: number;
  hd: number;
  ctx: number;
  qStride: number;
  rows: readonly (readonly number[])[];
  q: Float32Array;
  kc: Float32Array;
  vc: Float32Array;
}): Float32Array {
  const { nH, nKV, hd, ctx, qStride, rows, q, kc, vc } = a;
  const kvDim = nKV * hd, scale = 1 / Math.sqrt(hd);
  const expected = new Float32Array(rows.length * nH * hd);
  rows.forEach(([slot, pos], r) => {
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / (nH / nKV));
      const s: number[] = [];
      for (let t = 0; t <= pos; t++) {
        let d = 0;
        for (let i = 0; i < hd; i++) {
          d += q[r * qStride + h * hd + i] * kc[(slot * ctx + t) * kvDim + kvh * hd + i];
        }
        s.push(d * scale);
      }
      const m = Math.max(...s);
      const p = s.map((x) => Math.exp(x - m));
      const sum = p.reduce((x, y) => x + y, 0);
      for (let i = 0; i < hd; i++) {
        let acc = 0;
        for (let t = 0; t <= pos; t++) acc += p[t] * vc[(slot * ctx + t) * kvDim + kvh * hd + i];
        expected[(r * nH + h) * hd + i] = acc / sum;
      }
    }
  });
  return expected;
}
