/**
 * Training RMSNorm (src/ops/norm/train.ts): forward (y, rstd) and backward (dx overwritten or accumulated,
 * dweight accumulated) against the f64 reference, at widths that do not divide the workgroup, hidden-size rows
 * and per-head rows (rows = N · heads, width = head_dim), both workgroup sizes; and the backward against
 * central differences of the reference forward.
 */

import { RmsNormTrain } from "../src/ops/norm/train.ts";
import { referenceRmsNormBackward, referenceRmsNormTrain } from "../src/ops/norm/reference.ts";
import { assertClose, families } from "./harness.ts";
import { assertGrad, projected } from "./grad_check.ts";
import { asF32, type TrainGpu, trainGpu, uniform } from "./train_gpu.ts";

// f32 against f64 over rows of ≤ 131 values of size ≤ 2: a few ulps of the largest term.
const TOL = { atol: 2e-5, rtol: 1e-4 };
const EPS = 1e-5;

function setup(g: TrainGpu, rows: number, width: number, seed: number) {
  const x = asF32(uniform(seed, rows * width, -2, 2));
  const w = asF32(uniform(seed + 1, width, 0.5, 1.5));
  const dy = asF32(uniform(seed + 2, rows * width));
  const dx0 = uniform(seed + 3, rows * width), dw0 = uniform(seed + 4, width);
  const io = {
    x: g.f32(x),
    weight: g.f32(w),
    y: g.filled(rows * width),
    rstd: g.filled(rows),
    dy: g.f32(dy),
    dx: g.f32(dx0),
    dweight: g.f32(dw0),
  };
  return { x, w, dy, dx0, dw0, io };
}

for (const family of await families()) {
  Deno.test(`train rmsnorm (${family}): forward and backward against the reference`, async () => {
    const g = await trainGpu(family);
    // Hidden-size rows wider than the workgroup, per-head rows (12 = 3 tokens × 4 heads of 20), one row.
    const cases = [[7, 131, 8, false], [12, 20, 64, true], [1, 5, 8, true], [9, 131, 64, false]] as const;
    for (const [rows, width, workgroup, accumulateDx] of cases) {
      const { x, w, dy, dx0, dw0, io } = setup(g, rows, width, rows * 100 + width);
      const norm = new RmsNormTrain(g.kernels, io, { rows, width, eps: EPS, workgroup, accumulateDx });
      await g.run((pass) => {
        norm.forward(pass);
        norm.backward(pass);
      });
      const label = `${rows}×${width} WG=${workgroup} accumulateDx=${accumulateDx}`;
      const ref = referenceRmsNormTrain(x, w, rows, width, EPS);
      assertClose(await g.read(io.y, rows * width), ref.y, TOL, `y ${label}`);
      assertClose(await g.read(io.rstd, rows), ref.rstd, TOL, `rstd ${label}`);
      const grad = referenceRmsNormBackward(x, w, dy, rows, width, EPS);
      const dx = accumulateDx ? grad.dx.map((v, i) => v + dx0[i]) : grad.dx;
      assertClose(await g.read(io.dx, rows * width), dx, TOL, `dx ${label}`);
      assertClose(
        await g.read(io.dweight, width),
        grad.dweight.map((v, i) => v + dw0[i]),
        TOL,
        `dw ${label}`,
      );
    }
  });

  Deno.test(`train rmsnorm (${family}): backward against finite differences`, async () => {
    const g = await trainGpu(family);
    for (const [rows, width, workgroup] of [[5, 37, 8], [12, 16, 64]]) {
      const { x, w, dy, io } = setup(g, rows, width, 7 + rows);
      const norm = new RmsNormTrain(g.kernels, {
        ...io,
        dx: g.filled(rows * width),
        dweight: g.filled(width),
      }, {
        rows,
        width,
        eps: EPS,
        workgroup,
      });
      // The norm's backward comes from the GPU forward's saved rstd, as in training.
      await g.run((pass) => {
        norm.forward(pass);
        norm.backward(pass);
      });
      // f32 rounding of sums over ≤ 37 terms of size ≲ 4: ~1e-6 of the largest gradient; 1e-4 is far from it
      // and far below a wrong term (a missing mean term changes dx by O(rstd³ · x · Σ dy·w·x / width) ~ 10%).
      const y = (xs: ArrayLike<number>, ws: ArrayLike<number>) =>
        referenceRmsNormTrain(xs, ws, rows, width, EPS).y;
      const dxGpu = await g.read(norm.io.dx, rows * width);
      assertGrad("x", dxGpu, projected((v) => y(v, w), dy), x, 1e-4);
      assertGrad("weight", await g.read(norm.io.dweight!, width), projected((v) => y(x, v), dy), w, 1e-4);
    }
  });

  Deno.test(`train rmsnorm (${family}): more rows than one grid dimension and one loop allow`, async () => {
    const g = await trainGpu(family);
    // 65 600 rows (per-head rows of a large batch): a flat grid of workgroups, and dweight's row loop past
    // llvmpipe's 65 535 iterations.
    const rows = 65_600, width = 3;
    const { x, w, dy, dw0, io } = setup(g, rows, width, 11);
    const norm = new RmsNormTrain(g.kernels, io, { rows, width, eps: EPS, workgroup: 8 });
    await g.run((pass) => {
      norm.forward(pass);
      norm.backward(pass);
    });
    const ref = referenceRmsNormTrain(x, w, rows, width, EPS);
    assertClose(await g.read(io.rstd, rows), ref.rstd, TOL, "rstd");
    const grad = referenceRmsNormBackward(x, w, dy, rows, width, EPS);
    assertClose(await g.read(io.dx, rows * width), grad.dx, TOL, "dx");
    // A sum of 65 600 terms of size ≲ 4 in f32: ~1e-4 relative at worst.
    const dw = grad.dweight.map((v, i) => v + dw0[i]);
    assertClose(await g.read(io.dweight, width), dw, { atol: 1e-3, rtol: 1e-4 }, "dweight");
  });
}
