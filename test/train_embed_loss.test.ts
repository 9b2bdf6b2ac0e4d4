/**
 * Training embedding (src/ops/embed/train.ts) and cross-entropy (src/ops/loss/cross_entropy.ts): GPU against
 * the f64 references on odd sizes (repeated tokens, ignored rows, large logits), the CSR grouping, a
 * deterministic backward, and each backward against central differences of its reference forward.
 */

import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { buildCsr, csrWords, EmbeddingTrain } from "../src/ops/embed/train.ts";
import { referenceEmbedding, referenceEmbeddingBackward } from "../src/ops/embed/reference.ts";
import { CrossEntropy } from "../src/ops/loss/cross_entropy.ts";
import { IGNORE_TARGET, referenceCrossEntropy } from "../src/ops/loss/reference.ts";
import { assertClose, families } from "./harness.ts";
import { assertGrad, projected } from "./grad_check.ts";
import { asF32, type TrainGpu, trainGpu, uniform } from "./train_gpu.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { encodeFromF32, roundTo } from "../src/model/dtype.ts";

Deno.test("embedding CSR: distinct tokens in order, each with its rows in order", () => {
  const tokens = [5, 2, 5, 9, 2, 5];
  const out = new Uint32Array(csrWords(6));
  assertEquals(buildCsr(tokens, 6, out, new Uint32Array(6)), 3);
  assertEquals([...out.subarray(4, 7)], [2, 5, 9]); // tokens
  assertEquals([...out.subarray(10, 14)], [0, 2, 5, 6]); // offsets
  assertEquals([...out.subarray(17, 23)], [1, 4, 0, 2, 5, 3]); // rows
});

function embedding(
  g: TrainGpu,
  rows: number,
  hidden: number,
  vocab: number,
  workgroup: number,
  seed: number,
) {
  const table = asF32(uniform(seed, vocab * hidden));
  const dx = asF32(uniform(seed + 1, rows * hidden));
  const d0 = uniform(seed + 2, vocab * hidden);
  const io = {
    tokens: g.u32(new Uint32Array(rows)),
    table: g.f32(table),
    x: g.filled(rows * hidden),
    dx: g.f32(dx),
    dTable: g.f32(d0),
  };
  return { table, dx, d0, io, op: new EmbeddingTrain(g.kernels, io, { rows, hidden, vocab, workgroup }) };
}

for (const family of await families()) {
  Deno.test(`train embedding (${family}): gather, deterministic scatter-add, finite differences`, async () => {
    const g = await trainGpu(family);
    const rows = 23, hidden = 37, vocab = 19;
    const tokens = Uint32Array.from(uniform(40, rows, 0, vocab), Math.floor);
    tokens[3] = tokens[4] = tokens[17] = 0; // one token on several rows
    tokens[22] = vocab - 1;
    for (const workgroup of [8, 64]) {
      const { table, dx, d0, io, op } = embedding(g, rows, hidden, vocab, workgroup, workgroup);
      op.setTokens(g.device.queue, tokens);
      await g.run((pass) => {
        op.forward(pass);
        op.backward(pass);
      });
      assertClose(await g.read(io.x, rows * hidden), referenceEmbedding(table, tokens, hidden), {
        atol: 0,
        rtol: 0,
      }, "x");
      const ref = referenceEmbeddingBackward(dx, tokens, vocab, hidden);
      const once = await g.read(io.dTable, vocab * hidden);
      // ≤ 4 rows of size ≤ 1 per sum: a few f32 ulps.
      assertClose(once, ref.map((v, i) => v + d0[i]), { atol: 1e-6, rtol: 1e-6 }, `dTable WG=${workgroup}`);
      // The same sums again, bit for bit: each token's rows are added in a fixed order.
      const sums: number[][] = [];
      for (let t = 0; t < 2; t++) {
        g.device.queue.writeBuffer(io.dTable, 0, new Float32Array(vocab * hidden));
        await g.run((pass) => op.backward(pass));
        sums.push(Array.from(await g.read(io.dTable, vocab * hidden)));
      }
      assertEquals(sums[0], sums[1]);
      if (workgroup !== 8) continue;
      const fresh = embedding(g, rows, hidden, vocab, workgroup, 3);
      g.device.queue.writeBuffer(fresh.io.dTable, 0, new Float32Array(vocab * hidden));
      fresh.op.setTokens(g.device.queue, tokens);
      await g.run((pass) => fresh.op.backward(pass));
      // A linear gather: central differences are exact up to f64 rounding; f32 sums of ≤ 4 terms ~1e-7.
      const loss = projected((v) => referenceEmbedding(v, tokens, hidden), fresh.dx);
      assertGrad("table", await g.read(fresh.io.dTable, vocab * hidden), loss, fresh.table, 1e-5);
    }
  });

  Deno.test(`train embedding (${family}): a frozen F16 / BF16 table gathers its rounded values`, async () => {
    const g = await trainGpu(family);
    const rows = 11, hidden = 13, vocab = 7; // odd: rows start at odd element offsets
    const tokens = Uint32Array.from([0, 6, 3, 3, 1, 6, 5, 2, 4, 0, 6]);
    for (const type of ["BF16", "F16"] as const) {
      const raw = uniform(50, vocab * hidden), bytes = new Uint8Array(vocab * hidden * 2 + 2);
      bytes.set(encodeFromF32(type, raw)); // padded to whole words, as the queue writes them
      const io = {
        tokens: g.u32(new Uint32Array(rows)),
        table: bufferFrom(g.device, "table", bytes),
        tableType: type,
        x: g.filled(rows * hidden),
        dx: g.filled(rows * hidden),
        dTable: null,
      };
      const op = new EmbeddingTrain(g.kernels, io, { rows, hidden, vocab, workgroup: 8 });
      op.setTokens(g.device.queue, tokens);
      await g.run((pass) => {
        op.forward(pass);
        op.backward(pass); // a frozen table: nothing to record
      });
      const want = referenceEmbedding(raw.map((v) => roundTo(type, v)), tokens, hidden);
      assertClose(await g.read(io.x, rows * hidden), want, { atol: 0, rtol: 0 }, `x from ${type}`);
    }
  });

  Deno.test(`train embedding (${family}): a token on thousands of rows; more than 65535 refused`, async () => {
    const g = await trainGpu(family);
    // 9000 rows of one token × 8 column steps passed llvmpipe's 65535 loop iterations in a column loop.
    const rows = 9000, hidden = 64, vocab = 3;
    const tokens = new Uint32Array(rows).fill(1);
    tokens[5] = 2;
    const { dx, io, op } = embedding(g, rows, hidden, vocab, 8, 90);
    g.device.queue.writeBuffer(io.dTable, 0, new Float32Array(vocab * hidden));
    op.setTokens(g.device.queue, tokens);
    await g.run((pass) => op.backward(pass));
    const ref = referenceEmbeddingBackward(dx, tokens, vocab, hidden);
    // 9000 terms of size ≤ 1 in f32: ~1e-4 absolute.
    assertClose(await g.read(io.dTable, vocab * hidden), ref, { atol: 1e-3, rtol: 1e-5 }, "dTable");
    const big = embedding(g, 65_536, 1, 2, 8, 91);
    throws(() => big.op.setTokens(g.device.queue, new Uint32Array(65_536)), /a token on 65536 rows/);
  });

  Deno.test(`train cross-entropy (${family}): losses, mean, dlogits in place, finite differences`, async () => {
    const g = await trainGpu(family);
    const rows = 7, vocab = 261;
    const targets = Uint32Array.from([3, IGNORE_TARGET, 260, 0, 100, IGNORE_TARGET, 17]);
    const logits = asF32(uniform(50, rows * vocab, -4, 4));
    logits[4 * vocab + 7] = 90; // exp(90) overflows f32: the max must come out first
    for (const [workgroup, scale] of [[8, undefined], [64, 0.37]] as const) {
      const io = {
        logits: g.f32(logits),
        targets: g.u32(targets),
        losses: g.filled(rows),
        mean: g.filled(3),
      };
      const ce = new CrossEntropy(g.kernels, io, { rows, vocab, workgroup });
      const counted = ce.setTargets(g.device.queue, targets, scale);
      await g.run((pass) => ce.encode(pass));
      const ref = referenceCrossEntropy(logits, targets, vocab, scale ?? 1 / counted);
      const label = `WG=${workgroup} scale=${scale}`;
      // Sums of ≤ 261 exponentials, logs of O(10): ~1e-6 relative.
      const tol = { atol: 1e-6, rtol: 1e-5 };
      assertClose(await g.read(io.losses, rows), ref.losses, tol, `losses ${label}`);
      assertClose(
        await g.read(io.mean, 3),
        [ref.mean, ref.mean * ref.counted, ref.counted],
        tol,
        `mean ${label}`,
      );
      const dlogits = await g.read(io.logits, rows * vocab);
      assertClose(dlogits, ref.dlogits, tol, `dlogits ${label}`);
      // L = scale · Σ losses, whose gradient is dlogits. f32 softmax against f64 FD: ~1e-7 of the largest
      // entry (|p − 1| · scale); 1e-5 is far below what a wrong term (a missing onehot, the wrong scale) gives.
      const s = scale ?? 1 / counted;
      const loss = (v: Float64Array) =>
        s * referenceCrossEntropy(v, targets, vocab, s).losses.reduce((a, b) => a + b);
      assertGrad("logits", dlogits, loss, logits, 1e-5);
    }
  });
}
