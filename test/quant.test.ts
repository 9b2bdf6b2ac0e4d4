/**
 * The q8 / q4 row layout and its rounding (src/model/quant.ts), which the kernels decode (test/matmul.test.ts
 * checks them against `dequantizeRows`): sizes, error bounds per block, exact block peaks, zero blocks,
 * padding, and which tensors `--quant` touches; the pool of workers that quantizes at load gives the same bytes.
 */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import {
  dequantizeRows,
  isQuantizedTensor,
  QUANT_BLOCK,
  QUANT_FORMATS,
  quantBlocks,
  quantizeRows,
  quantRowBytes,
} from "../src/model/quant.ts";
import { decodeToF32, encodeFromF32, f16ToF32, f32ToF16 } from "../src/model/dtype.ts";
import { QuantPool } from "../src/model/quant_pool.ts";
import { CheckpointError } from "../src/errors.ts";
import { randomNormal } from "../src/util/random.ts";

Deno.test("quant: row sizes — whole blocks of data, one f16 scale per block, 16-byte rows", () => {
  // q8: 32 bytes + 2 per block; q4: 16 bytes + 2 per block; rounded up to 16.
  assertEquals([64, 7, 100, 4096].map((c) => quantRowBytes("q8", c)), [80, 48, 144, 4352]);
  assertEquals([64, 7, 100, 4096].map((c) => quantRowBytes("q4", c)), [48, 32, 80, 2304]);
  assertEquals(quantBlocks(100), 4);
});

/** The f16 scale's own rounding, times the largest q: relative 2^-11, or a subnormal step of 2^-24. */
const slack = (format: string, peak: number) =>
  (format === "q8" ? 127 : 8) * Math.max(Math.abs(peak) / (format === "q8" ? 127 : 8) * 2 ** -11, 2 ** -25);

Deno.test("quant: each weight within half a step (q8) or a step (q4) of its block's scale; block peaks exact to f16", () => {
  for (const format of QUANT_FORMATS) {
    for (const cols of [7, 32, 100, 257]) {
      const rows = 5;
      const w = randomNormal(cols, rows * cols, 0.02);
      const bytes = quantizeRows(format, w, rows, cols);
      assertEquals(bytes.byteLength, rows * quantRowBytes(format, cols));
      const back = dequantizeRows(format, bytes, rows, cols);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < quantBlocks(cols); b++) {
          const k0 = b * QUANT_BLOCK, k1 = Math.min(cols, k0 + QUANT_BLOCK);
          const block = Array.from(w.subarray(r * cols + k0, r * cols + k1));
          const peak = block.reduce((p, v) => (Math.abs(v) > Math.abs(p) ? v : p), 0);
          const scale = f16ToF32(f32ToF16(format === "q8" ? Math.abs(peak) / 127 : Math.abs(peak) / 8));
          for (let k = k0; k < k1; k++) {
            const err = Math.abs(back[r * cols + k] - w[r * cols + k]);
            // q4's levels −8..7 reach the peak's side 8 steps out, the other side 7: there a value may be
            // clipped by up to one step.
            const bound = format === "q8" ? scale / 2 : scale;
            ok(err <= bound + slack(format, peak), `${format} cols ${cols} [${r}, ${k}]: error ${err}`);
          }
          const at = r * cols + k0 + block.indexOf(peak);
          ok(Math.abs(back[at] - peak) <= slack(format, peak), `${format}: peak ${peak} → ${back[at]}`);
        }
      }
    }
  }
});

Deno.test("quant: zero blocks decode to zero; q4 padding nibbles decode to zero", () => {
  const cols = 40; // one whole block and 8 columns of a second
  const w = new Float32Array(cols);
  w.fill(-0.5, 32);
  for (const format of QUANT_FORMATS) {
    const back = dequantizeRows(format, quantizeRows(format, w, 1, cols), 1, cols);
    ok(back.subarray(0, 32).every((v) => v === 0), `${format}: ${back.subarray(0, 32)}`);
    ok(back.subarray(32).every((v) => Math.abs(v + 0.5) < 1e-3), `${format}: ${back.subarray(32)}`);
  }
  // q4: the second block's 24 padding columns (nibble 8 each) sit in bytes 20..31 of the data.
  const q4 = quantizeRows("q4", w, 1, cols);
  ok(q4.subarray(20, 32).every((b) => b === 0x88), `padding bytes ${q4.subarray(20, 32)}`);
});

Deno.test("quant: --quant touches the base model's projections and the head only (a tied head: as its own copy)", () => {
  for (
    const name of [
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.31.self_attn.o_proj.weight",
      "model.layers.7.mlp.down_proj.weight",
      "lm_head.weight",
    ]
  ) ok(isQuantizedTensor(name), name);
  for (
    const name of [
      "model.embed_tokens.weight",
      "model.layers.0.input_layernorm.weight",
      "model.layers.16.router.router_enc.weight",
      "model.layers.16.router_proj.gate_proj.weight",
      "model.norm.weight",
    ]
  ) ok(!isQuantizedTensor(name), name);
});

Deno.test("quant pool: workers give the inline bytes for every dtype, format and ragged width; loads wait for room", async () => {
  const pool = QuantPool.open(2);
  ok(pool, "workers start");
  try {
    const expected: Uint8Array[] = [], got: Uint8Array[] = [];
    let seed = 7;
    for (const dtype of ["F32", "F16", "BF16"] as const) {
      for (const format of QUANT_FORMATS) {
        for (const cols of [100, 257, 1024]) {
          const rows = 9;
          const values = randomNormal(seed++, rows * cols, 0.05);
          const raw = encodeFromF32(dtype, values);
          // A view into a larger buffer, as the loader passes chunks of a tensor.
          const big = new Uint8Array(raw.byteLength + 64);
          big.set(raw, 32);
          const i = expected.length;
          expected.push(quantizeRows(format, decodeToF32(dtype, raw), rows, cols));
          const chunk = big.subarray(32, 32 + raw.byteLength);
          pool.submit({ format, dtype, raw: chunk, rows, cols }, (q) => (got[i] = q));
        }
      }
    }
    ok(pool.outstanding > pool.maxQueued, "more chunks submitted than the loader lets wait");
    await pool.room();
    ok(pool.outstanding <= pool.maxQueued, "room() waits until few enough chunks are outstanding");
    await pool.drain();
    assertEquals(pool.outstanding, 0);
    assertEquals(got.length, expected.length);
    got.forEach((q, i) => assertEquals(q, expected[i], `chunk ${i}`));
  } finally {
    pool.close();
  }
});

Deno.test("quant pool: a chunk that fails in a worker fails the load with a CheckpointError and the fix", async () => {
  const pool = QuantPool.open(1)!;
  try {
    pool.submit({ format: "q8", dtype: "BF16", raw: new Uint8Array(64), rows: -1, cols: 32 }, () => {});
    await rejects(() => pool.drain(), (e: unknown) => {
      ok(e instanceof CheckpointError, String(e));
      ok(/quantizing the weights failed/.test(e.message) && /without --quant/.test(e.hint ?? ""), e.message);
      return true;
    });
  } finally {
    pool.close();
  }
});
