/**
 * The training matmuls (src/ops/matmul/train.ts) against the f64 reference on odd sizes (not multiples of the
 * 64 × 64 tile or of 4: the scalar-load path) and aligned ones (vec4 loads), overwrite and accumulate; and the
 * backward (dx, dW) against central differences of the reference forward.
 */

import { Linear, type LinearShape, TrainMatmul } from "../src/ops/matmul/train.ts";
import { referenceLinear, referenceLinearBackward } from "../src/ops/matmul/reference.ts";
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
}
