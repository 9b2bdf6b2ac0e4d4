/**
 * The training forward's elementwise ops (src/ops/elementwise/): SwiGLU, the residual add, row scales (s and
 * 1 − s, the 0/1 row mask), tanh and sigmoid — forward and backward against the f64 references on sizes that
 * do not divide the workgroup, overwrite and accumulate, a grid past 65535 workgroups; and each backward
 * against central differences of its reference forward.
 */

import { SwigluTrain } from "../src/ops/elementwise/swiglu.ts";
import { AddInto } from "../src/ops/elementwise/add.ts";
import { RowMask, RowScale } from "../src/ops/elementwise/row_scale.ts";
import { Unary, type UnaryFn } from "../src/ops/elementwise/unary.ts";
import {
  referenceRowScale,
  referenceRowScaleBackward,
  referenceSwigluBackward,
  referenceSwigluTrain,
  referenceUnary,
  referenceUnaryBackward,
} from "../src/ops/elementwise/reference.ts";
import { assertClose, families } from "./harness.ts";
import { assertGrad, projected } from "./grad_check.ts";
import { asF32, trainGpu, uniform } from "./train_gpu.ts";

// Elementwise f32 against f64: a few ulps (exp and tanh are not correctly rounded on GPUs).
const TOL = { atol: 1e-6, rtol: 1e-5 };
// Gradients against finite differences of the f64 forward: f32 rounding of a product of a few factors (~1e-7)
// plus the GPU's exp / tanh error; 1e-5 of the largest gradient leaves a 10× margin, and a wrong formula
// (a missing factor, s for 1 − s) is off by O(1).
const FD = 1e-5;

const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);

for (const family of await families()) {
  Deno.test(`train swiglu (${family}): forward, backward, finite differences`, async () => {
    const g = await trainGpu(family);
    const n = 3 * 67;
    const gate = asF32(uniform(1, n, -6, 6)), up = asF32(uniform(2, n)), dact = asF32(uniform(3, n));
    const io = {
      gate: g.f32(gate),
      up: g.f32(up),
      act: g.filled(n),
      dact: g.f32(dact),
      dgate: g.f32(uniform(4, n)),
      dup: g.f32(uniform(5, n)),
    };
    const op = new SwigluTrain(g.kernels, io, n);
    await g.run((pass) => {
      op.forward(pass);
      op.backward(pass);
    });
    assertClose(await g.read(io.act, n), referenceSwigluTrain(gate, up), TOL, "act");
    const ref = referenceSwigluBackward(gate, up, dact);
    const dgate = await g.read(io.dgate, n), dup = await g.read(io.dup, n);
    assertClose(dgate, ref.dgate, TOL, "dgate");
    assertClose(dup, ref.dup, TOL, "dup");
    assertGrad("gate", dgate, projected((v) => referenceSwigluTrain(v, up), dact), gate, FD);
    assertGrad("up", dup, projected((v) => referenceSwigluTrain(gate, v), dact), up, FD);
  });

  Deno.test(`train add (${family}): y += x and y = x, over a grid past 65535 workgroups`, async () => {
    const g = await trainGpu(family);
    for (const n of [131, 64 * 65535 + 70]) {
      const x = asF32(uniform(6, n)), y0 = asF32(uniform(7, n));
      for (const accumulate of [true, false]) {
        const y = g.f32(y0);
        await g.run((pass) => new AddInto(g.kernels, { x: g.f32(x), y }, n, accumulate).encode(pass));
        assertClose(await g.read(y, n), accumulate ? plus(x, y0) : x, TOL, `add n=${n} ${accumulate}`);
      }
    }
  });

  Deno.test(`train row scale (${family}): s and 1 − s, accumulate, mask, finite differences`, async () => {
    const g = await trainGpu(family);
    const rows = 5, width = 71, n = rows * width;
    const s = asF32(uniform(8, rows, 0, 1)), x = asF32(uniform(9, n)), dy = asF32(uniform(10, n));
    for (const complement of [false, true]) {
      for (const acc of [false, true]) {
        const y0 = uniform(11, n), dx0 = uniform(12, n), ds0 = uniform(13, rows);
        const io = { s: g.f32(s), x: g.f32(x), y: g.f32(y0), dy: g.f32(dy), dx: g.f32(dx0), ds: g.f32(ds0) };
        const opts = { complement, accumulateY: acc, accumulateDx: acc, accumulateDs: acc };
        const op = new RowScale(g.kernels, io, rows, width, opts);
        await g.run((pass) => {
          op.forward(pass);
          op.backward(pass);
        });
        const label = `complement=${complement} accumulate=${acc}`;
        const y = referenceRowScale(s, x, width, complement);
        const ref = referenceRowScaleBackward(s, x, dy, width, complement);
        assertClose(await g.read(io.y, n), acc ? plus(y, y0) : y, TOL, `y ${label}`);
        const dx = await g.read(io.dx, n), ds = await g.read(io.ds, rows);
        assertClose(dx, acc ? plus(ref.dx, dx0) : ref.dx, TOL, `dx ${label}`);
        // Σ over 71 products: f32 rounding ~1e-6 of the terms.
        assertClose(ds, acc ? plus(ref.ds, ds0) : ref.ds, { atol: 1e-5, rtol: 1e-5 }, `ds ${label}`);
        if (acc) continue;
        assertGrad("x", dx, projected((v) => referenceRowScale(s, v, width, complement), dy), x, FD);
        assertGrad("s", ds, projected((v) => referenceRowScale(v, x, width, complement), dy), s, FD);
      }
    }
    const mask = [1, 0, 0, 1, 1];
    const io = { mask: g.f32(mask), x: g.f32(x), y: g.filled(n, 7), dy: g.f32(dy), dx: g.filled(n, 7) };
    const op = new RowMask(g.kernels, io, rows, width);
    await g.run((pass) => {
      op.forward(pass);
      op.backward(pass);
    });
    assertClose(await g.read(io.y, n), referenceRowScale(mask, x, width), { atol: 0, rtol: 0 }, "masked y");
    assertClose(
      await g.read(io.dx, n),
      referenceRowScale(mask, dy, width),
      { atol: 0, rtol: 0 },
      "masked dx",
    );
  });

  Deno.test(`train tanh / sigmoid (${family}): forward, backward, finite differences`, async () => {
    const g = await trainGpu(family);
    const n = 197;
    // Large |x| too: tanh and sigmoid saturate without NaN.
    const x = asF32([...uniform(14, n - 4, -4, 4), -200, -30, 30, 200]), dy = asF32(uniform(15, n));
    for (const fn of ["tanh", "sigmoid"] as UnaryFn[]) {
      for (const acc of [false, true]) {
        const dx0 = uniform(16, n);
        const io = { x: g.f32(x), y: g.filled(n), dy: g.f32(dy), dx: g.f32(dx0) };
        const op = new Unary(g.kernels, fn, io, n, acc);
        await g.run((pass) => {
          op.forward(pass);
          op.backward(pass);
        });
        const y = await g.read(io.y, n);
        assertClose(y, referenceUnary(fn, x), TOL, `${fn} y`);
        const dx = await g.read(io.dx, n);
        const ref = referenceUnaryBackward(fn, referenceUnary(fn, x), dy);
        assertClose(dx, acc ? plus(ref, dx0) : ref, TOL, `${fn} dx accumulate=${acc}`);
        if (!acc) assertGrad("x", dx, projected((v) => referenceUnary(fn, v), dy), x, FD);
      }
    }
  });
}
