/**
 * Central finite differences for the training ops' backward passes. The check runs on a reference forward in
 * f64 (ε = 1e-6: truncation error ~ε² · f''' and rounding ~1e-16 / ε leave ~1e-9 of the gradient), so what it
 * measures against is the exact gradient to ~1e-9, and a GPU backward in f32 is compared to it with a
 * tolerance set by f32 rounding alone. An FD on the f32 GPU forward would need ε ≈ 1e-2..1e-3 and drown a
 * wrong term in its own noise.
 */

import { assertClose, type Tolerance } from "./harness.ts";

/** A scalar function of a flat vector (the loss Σ out · dy of a reference forward, see `projected`). */
export type Scalar = (x: Float64Array) => number;

/** ∂f/∂x[i] for every i by central differences (x is restored afterwards). */
export function numericGrad(f: Scalar, x: ArrayLike<number>, eps = 1e-6): Float64Array {
  const v = Float64Array.from(x);
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + eps;
    const up = f(v);
    v[i] = keep - eps;
    const down = f(v);
    v[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** The loss L = Σ_i out[i] · dy[i] of a forward: its gradient with respect to the output is dy. */
export function projected(forward: (x: Float64Array) => ArrayLike<number>, dy: ArrayLike<number>): Scalar {
  return (x) => {
    const out = forward(x);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * dy[i];
    return s;
  };
}

/**
 * Asserts a backward's gradient of input `name` against central differences of `loss` at `x`. The tolerance
 * is relative to the gradient's largest magnitude (atol = rel · max|g|, rtol = rel): f32 rounding of a sum
 * scales with its terms, not with the (possibly cancelling) result.
 */
export function assertGrad(
  name: string,
  actual: ArrayLike<number>,
  loss: Scalar,
  x: ArrayLike<number>,
  rel: number,
): void {
  const expected = numericGrad(loss, x);
  let max = 0;
  for (const v of expected) max = Math.max(max, Math.abs(v));
  const tol: Tolerance = { atol: rel * Math.max(max, 1e-12), rtol: rel };
  assertClose(actual, expected, tol, `∂L/∂${name} against finite differences`);
}
