/**
 * A minimal finite-difference gradient check for the training ops of grad-b (attention, RoPE, skip loss): central
 * differences of a plain-TypeScript forward in f64, compared to a GPU backward, and a check that the comparison
 * would catch a wrong gradient (one element off by 1% of the gradient's scale), so no tolerance passes anything.
 */

import { assertClose, type Tolerance } from "./harness.ts";

/** (f(x + h·e_i) − f(x − h·e_i)) / 2h for each index in `at` (x is restored). */
export function centralDiff(
  f: (x: Float64Array) => number,
  x: Float64Array,
  at: ArrayLike<number>,
  h: number,
): Float64Array {
  const out = new Float64Array(at.length);
  for (let j = 0; j < at.length; j++) {
    const i = at[j], x0 = x[i];
    x[i] = x0 + h;
    const up = f(x);
    x[i] = x0 - h;
    const down = f(x);
    x[i] = x0;
    out[j] = (up - down) / (2 * h);
  }
  return out;
}

/** Every index below n, or `count` of them spread evenly (first and last included). */
export function sampleIndices(n: number, count = n): number[] {
  if (count >= n) return [...Array(n).keys()];
  return Array.from({ length: count }, (_, j) => Math.round((j * (n - 1)) / (count - 1)));
}

/**
 * The GPU gradient `grad` (all elements of x) against central differences of `f` at indices `at`, within `tol`;
 * then the same comparison with the largest element moved by 1% of the largest |gradient| must fail.
 */
export function checkGradient(
  label: string,
  grad: ArrayLike<number>,
  f: (x: Float64Array) => number,
  x: Float64Array,
  opts: { h: number; tol: Tolerance; at?: ArrayLike<number> },
): void {
  const at = opts.at ?? sampleIndices(x.length);
  const fd = centralDiff(f, x, at, opts.h);
  const got = Float64Array.from(at, (i) => grad[i]);
  assertClose(got, fd, opts.tol, `${label} vs finite differences`);
  let j = 0;
  for (let i = 1; i < fd.length; i++) if (Math.abs(fd[i]) > Math.abs(fd[j])) j = i;
  if (fd[j] === 0) throw new Error(`${label}: every finite difference is 0, nothing is checked`);
  const wrong = got.slice();
  wrong[j] += 0.01 * Math.abs(fd[j]);
  let caught = false;
  try {
    assertClose(wrong, fd, opts.tol, label);
  } catch {
    caught = true;
  }
  if (!caught) {
    throw new Error(
      `${label}: a gradient 1% off at one element passes tolerance ${JSON.stringify(opts.tol)}`,
    );
  }
}
