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
