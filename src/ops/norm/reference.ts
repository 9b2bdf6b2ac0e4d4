/** RMSNorm in plain TypeScript (f64 sums): x · rsqrt(mean(x²) + eps) · weight per row of x [N, K]. */
export function referenceRmsNorm(
  x: Float32Array,
  N: number,
  K: number,
  weight: Float32Array,
  eps: number,
): Float32Array {
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += x[n * K + k] ** 2;
    const inv = 1 / Math.sqrt(ss / K + eps);
    for (let k = 0; k < K; k++) out[n * K + k] = x[n * K + k] * inv * weight[k];
  }
  return out;
}

/** Training RMSNorm forward in f64 over rows of any width: y and 1/RMS per row. */
export function referenceRmsNormTrain(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  rows: number,
  width: number,
  eps: number,
): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * width);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let k = 0; k < width; k++) ss += x[r * width + k] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / width + eps);
    for (let k = 0; k < width; k++) y[r * width + k] = x[r * width + k] * rstd[r] * weight[k];
  }
  return { y, rstd };
}

/** Its gradients in f64: dx and dweight from dy (rstd recomputed from x). */
export function referenceRmsNormBackward(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  width: number,
  eps: number,
): { dx: Float64Array; dweight: Float64Array } {
  const { rstd } = referenceRmsNormTrain(x, weight, rows, width, eps);
  const dx = new Float64Array(rows * width);
  const dweight = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const o = r * width, rs = rstd[r];
    let dot = 0;
    for (let k = 0; k < width; k++) dot += dy[o + k] * weight[k] * x[o + k];
    const c = dot * rs * rs / width;
    for (let k = 0; k < width; k++) {
      dx[o + k] = rs * (dy[o + k] * weight[k] - x[o + k] * c);
      dweight[k] += dy[o + k] * x[o + k] * rs;
    }
  }
  return { dx, dweight };
}
