/**
 * The training matmuls (src/ops/matmul/train.ts) against the f64 reference on odd sizes (not multiples of the
 * 64 × 64 tile or of 4: the scalar-load path) and aligned ones (vec4 loads), overwrite and accumulate; W in
 * F16 / BF16 (a frozen weight) for the forward and the input gradient; and the backward (dx, dW) against
 * central differences of the reference forward.
 */

import { Linear, type LinearShape, TrainMatmul } from "../src/ops/matmul/train.ts";
import { referenceLinear, referenceLinearBackward } from "../src/ops/matmul/reference.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { encodeFromF32, roundTo } from "../src/model/dtype.ts";
import { throws } from "node:assert/strict";
import { assertClose, families } from "./harness.ts";
import { assertGrad, projected } from "./grad_check.ts";
import { asF32, trainGpu, uniform } from "./train_gpu.ts";

// f32 sums of K ≤ 200 terms of size ≤ 1 against f64: ~K · 2⁻²⁴ relative to the terms' scale.
const TOL = { atol: 2e-5, rtol: 1e-4 };

const SHAPES: LinearShape[] = [
  { N: 5, K: 7, M: 3 },
  { N: 67, K: 45, M: 70 },
  { N: 65, K: 132, M: 68 }, // aligned K and M: vec4 loads
  { N: 130, K: 200, M: 129 }, // aligned K only: nt vectorised, nn / tn scalar
];

for (const family of await families()) {
  Deno.test(`train matmul (${family}): nt, nn, tn against the reference, overwrite and accumulate`, async () => {
    const g = await trainGpu(family);
    for (const s of SHAPES) {
      const { N, K, M } = s;
      const x = asF32(uniform(1, N * K)), w = asF32(uniform(2, M * K)), dy = asF32(uniform(3, N * M));
      const base = { y: uniform(4, N * M), dx: uniform(5, N * K), dw: uniform(6, M * K) };
      const y = g.f32(base.y), dx = g.f32(base.dx), dw = g.f32(base.dw);
      const io = { x: g.f32(x), w: g.f32(w), dy: g.f32(dy) };
      for (const acc of [false, true]) {
        await g.run((pass) => {
          new TrainMatmul(g.kernels, "nt", { a: io.x, b: io.w, c: y }, s, acc).encode(pass);
          new TrainMatmul(g.kernels, "nn", { a: io.dy, b: io.w, c: dx }, s, acc).encode(pass);
          new TrainMatmul(g.kernels, "tn", { a: io.dy, b: io.x, c: dw }, s, acc).encode(pass);
        });
        const ey = referenceLinear(x, w, N, K, M);
        const eg = referenceLinearBackward(x, w, dy, N, K, M);
        const plus = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + (acc ? b[i] : 0));
        const label = `${N}×${K}×${M} accumulate=${acc}`;
        assertClose(await g.read(y, N * M), plus(ey, base.y), TOL, `y ${label}`);
        assertClose(await g.read(dx, N * K), plus(eg.dx, base.dx), TOL, `dx ${label}`);
        assertClose(await g.read(dw, M * K), plus(eg.dw, base.dw), TOL, `dw ${label}`);
        // The accumulating pass adds to what the overwriting one left.
        base.y = new Float64Array(await g.read(y, N * M));
        base.dx = new Float64Array(await g.read(dx, N * K));
        base.dw = new Float64Array(await g.read(dw, M * K));
      }
    }
  });

  Deno.test(`train matmul (${family}): nt and nn with a 16-bit W (F16, BF16) against the rounded reference`, async () => {
    const g = await trainGpu(family);
    // Odd sizes (the two-word unaligned path, odd and even element offsets), K and M multiples of 4 (one half of
    // a word per 4 elements), and past a 128-wide tile.
    const shapes = [{ N: 5, K: 7, M: 3 }, { N: 13, K: 21, M: 11 }, { N: 9, K: 20, M: 12 }, {
      N: 3,
      K: 9,
      M: 131,
    }];
    for (const dtype of ["BF16", "F16"] as const) {
      for (const s of shapes) {
        const { N, K, M } = s;
        const x = asF32(uniform(41, N * K)), dy = asF32(uniform(43, N * M)), raw = uniform(42, M * K);
        const w = raw.map((v) => roundTo(dtype, v));
        // The weight's bytes, with NaN halves (0xffff) in the words past it: loads clamp and mask, never use them.
        const bytes = new Uint8Array(Math.ceil((M * K * 2) / 16) * 16 + 16).fill(0xff);
        bytes.set(encodeFromF32(dtype, raw));
        const wb = bufferFrom(g.device, `W ${dtype}`, bytes);
        const base = { y: uniform(44, N * M), dx: uniform(45, N * K) };
        const y = g.f32(base.y), dx = g.f32(base.dx), io = { x: g.f32(x), dy: g.f32(dy) };
        for (const acc of [false, true]) {
          await g.run((pass) => {
            new TrainMatmul(g.kernels, "nt", { a: io.x, b: wb, c: y }, s, acc, dtype).encode(pass);
            new TrainMatmul(g.kernels, "nn", { a: io.dy, b: wb, c: dx }, s, acc, dtype).encode(pass);
          });
          const label = `${dtype} ${N}×${K}×${M} accumulate=${acc}`;
          const plus = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + (acc ? b[i] : 0));
          const gy = await g.read(y, N * M), gdx = await g.read(dx, N * K);
          assertClose(gy, plus(referenceLinear(x, w, N, K, M), base.y), TOL, `y ${label}`);
          assertClose(gdx, plus(referenceLinearBackward(x, w, dy, N, K, M).dx, base.dx), TOL, `dx ${label}`);
          // The check's reach: the same sums over the unrounded weights are off by ~2⁻⁹ (BF16) or 2⁻¹² (F16).
          throws(() => assertClose(gy, plus(referenceLinear(x, raw, N, K, M), base.y), TOL));
          base.y = new Float64Array(gy);
          base.dx = new Float64Array(gdx);
        }
      }
    }
    const b = g.f32(new Float64Array(16));
    throws(
      () => new TrainMatmul(g.kernels, "tn", { a: b, b, c: b }, { N: 2, K: 2, M: 2 }, false, "BF16"),
      /f32/,
    );
  });

  Deno.test(`train matmul (${family}): Linear backward against finite differences`, async () => {
    const g = await trainGpu(family);
    // Sizes across the 16-deep staging steps and the 128-wide tiles (rows, columns and depth of each kind).
    for (const s of [{ N: 21, K: 19, M: 10 }, { N: 130, K: 6, M: 5 }, { N: 4, K: 8, M: 132 }]) {
      const { N, K, M } = s;
      const x = asF32(uniform(11, N * K)), w = asF32(uniform(12, M * K)), dy = asF32(uniform(13, N * M));
      const io = {
        x: g.f32(x),
        w: g.f32(w),
        y: g.filled(N * M),
        dy: g.f32(dy),
        dx: g.filled(N * K),
        dw: g.filled(M * K),
      };
      const lin = new Linear(g.kernels, io, s);
      await g.run((pass) => {
        lin.forward(pass);
        lin.backward(pass);
      });
      // f32 products summed over ≤ 132 terms of size ≤ 1: error ≲ 1e-5 of the largest gradient; 1e-4 leaves
      // room for that while a wrong term (a transposed index, a missed row) is off by O(1).
      const lossX = projected((v) => referenceLinear(v, w, N, K, M), dy);
      assertGrad("x", await g.read(io.dx, N * K), lossX, x, 1e-4);
      const lossW = projected((v) => referenceLinear(x, v, N, K, M), dy);
      const dw = await g.read(io.dw, M * K);
      assertGrad("W", dw, lossW, w, 1e-4);
      // The check's reach: one entry off by 1e-3 of the largest gradient fails it.
      const max = dw.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      dw[dw.length >> 1] += 1e-3 * max;
      throws(() => assertGrad("W", dw, lossW, w, 1e-4));
    }
  });

  Deno.test(`train matmul (${family}): two projections of one input sum their input gradients`, async () => {
    const g = await trainGpu(family);
    const N = 9, K = 12, M1 = 8, M2 = 5;
    const x = asF32(uniform(21, N * K)), w1 = asF32(uniform(22, M1 * K)), w2 = asF32(uniform(23, M2 * K));
    const dy1 = asF32(uniform(24, N * M1)), dy2 = asF32(uniform(25, N * M2));
    const xb = g.f32(x), dx = g.f32(uniform(26, N * K)); // stale values the first projection overwrites
    const layer = (w: Float64Array, dy: Float64Array, M: number, accumulateDx: boolean) =>
      new Linear(
        g.kernels,
        {
          x: xb,
          w: g.f32(w),
          y: g.filled(N * M),
          dy: g.f32(dy),
          dx,
          dw: g.filled(M * K),
        },
        { N, K, M },
        { accumulateDx },
      );
    const first = layer(w1, dy1, M1, false), second = layer(w2, dy2, M2, true);
    await g.run((pass) => {
      first.backward(pass);
      second.backward(pass);
    });
    const a = referenceLinearBackward(x, w1, dy1, N, K, M1).dx,
      b = referenceLinearBackward(x, w2, dy2, N, K, M2).dx;
    assertClose(await g.read(dx, N * K), a.map((v, i) => v + b[i]), TOL, "dx of both projections");
  });

  Deno.test(`train matmul (${family}): a reduction longer than 65535 (a batch's rows, the vocabulary)`, async () => {
    const g = await trainGpu(family);
    // llvmpipe ends a loop after 65535 iterations counted over every entry: the depth loop and the loops
    // inside it must stay below that for dW over B·T rows and dx through an LM head.
    for (
      const [kind, s] of [["tn", { N: 65_600, K: 5, M: 3 }], ["tn", { N: 65_600, K: 8, M: 4 }], ["nn", {
        N: 3,
        K: 5,
        M: 65_600,
      }]] as const
    ) {
      const { N, K, M } = s;
      const x = asF32(uniform(31, N * K)), w = asF32(uniform(32, M * K)), dy = asF32(uniform(33, N * M));
      const io = kind === "tn" ? { a: g.f32(dy), b: g.f32(x), c: g.filled(M * K) } : {
        a: g.f32(dy),
        b: g.f32(w),
        c: g.filled(N * K),
      };
      await g.run((pass) => new TrainMatmul(g.kernels, kind, io, s, false).encode(pass));
      const ref = referenceLinearBackward(x, w, dy, N, K, M);
      // Sums of 65 600 products of size ≤ 1 in f32: error ~1e-4 absolute, well below a lost tail (~1).
      const tol = { atol: 2e-3, rtol: 1e-4 };
      const label = `${kind} ${N}×${K}×${M}`;
      if (kind === "tn") assertClose(await g.read(io.c, M * K), ref.dw, tol, label);
      else assertClose(await g.read(io.c, N * K), ref.dx, tol, label);
    }
  });
}
