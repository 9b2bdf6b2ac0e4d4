/**
 * DMTD's kernels against their references, on both kernel families: mix_rows (prompt chunks, heads, scoring
 * rows, an empty table) and the token history (recording sampled tokens, gathering a block's).
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { assertClose, families, testGpu } from "./harness.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer } from "../src/gpu/buffers.ts";
import { mixBytes, mixData, type MixRow, MixRows } from "../src/ops/dmtd/mix_rows.ts";
import { TokenHistory } from "../src/ops/dmtd/token_history.ts";
import { referenceMixRows } from "../src/ops/dmtd/reference.ts";
import { randomNormal } from "../src/util/random.ts";

for (const family of await families()) {
  Deno.test(`dmtd kernels (${family}): mix_rows and the token history against their references`, async () => {
    const gpu = await testGpu(family);
    const kernels = new KernelCache(gpu);
    const device = gpu.device;
    const width = 70, rows = 5;
    const tables: MixRow[][] = [
      [0, 1, 2, 3, 4].map((src) => ({ src, a: 1, b: 1 })), // a prompt chunk, e + t
      [{ src: 4, a: 1, b: 1 }], // a head: the block's last row into row 0
      [{ src: 0, a: 1, b: 1 }, { src: 1, a: 0, b: 1 }, { src: 2, a: 1, b: 0 }], // scoring: each row its input
      [],
    ];
    for (const [t, table] of tables.entries()) {
      const xv = randomNormal(t + 1, rows * width), ev = randomNormal(t + 9, rows * width);
      const x = bufferFrom(device, "x", xv), e = bufferFrom(device, "e", ev);
      const data = new DataView(new ArrayBuffer(mixBytes(rows)));
      mixData(table, data);
      const op = new MixRows(kernels, width, bufferFrom(device, "mix", data), x, e);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      op.encode(pass, table.length);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = new Float32Array(await readBuffer(device, x, rows * width * 4));
      assertClose(got, referenceMixRows(xv, ev, width, table), { atol: 0, rtol: 0 }, `mix table ${t}`);
    }
    // Record: outputs 0 and 1 of rows (slot 1, pos 3) and (slot 0, pos 9 = the last: dropped); gather: a block.
    const ctx = 10;
    const step = bufferFrom(device, "step", new Uint32Array([3, 2, 0, 0]));
    const rowsBuf = bufferFrom(device, "rows", new Uint32Array([0, 0, 1, 3, 0, 9]));
    const outRows = bufferFrom(device, "out_rows", new Uint32Array([1, 2]));
    const tokens = bufferFrom(device, "tokens", new Uint32Array([77, 88, 99, 0]));
    const blockStep = bufferFrom(device, "block_step", new Uint32Array([2, 0, 0, 0]));
    const blockRows = bufferFrom(device, "block_rows", new Uint32Array([1, 4, 1, 3]));
    const history = new TokenHistory(kernels, 2, ctx, {
      step,
      rows: rowsBuf,
      outRows,
      blockStep,
      blockRows,
      tokens,
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    history.record(pass, 2);
    pass.end();
    device.queue.submit([enc.finish()]);
    const h = new Uint32Array(await readBuffer(device, history.history, 2 * ctx * 4));
    assertEquals(h[ctx + 4], 77, "slot 1, pos 3 → token at pos 4");
    assertEquals(Array.from(h).filter((v) => v !== 0), [77], "the token past the context is dropped");
    const enc2 = device.createCommandEncoder();
    const pass2 = enc2.beginComputePass();
    history.gather(pass2, 2);
    pass2.end();
    device.queue.submit([enc2.finish()]);
    assertEquals(Array.from(new Uint32Array(await readBuffer(device, tokens, 16))), [77, 0, 99, 0]);
  });
}
