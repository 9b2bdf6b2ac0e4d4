/** The DMTD step pieces in plain TypeScript. */

/** x[i] = x[src + i] + e[src + i] for i < count, rows of `width` (in place, row by row from the first). */
export function referenceAddRows(
  x: Float32Array,
  e: Float32Array,
  width: number,
  src: number,
  count: number,
): Float32Array {
  const out = x.slice();
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < width; c++) out[i * width + c] = x[(src + i) * width + c] + e[(src + i) * width + c];
  }
  return out;
}
