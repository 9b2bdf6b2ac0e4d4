/** The DMTD step pieces in plain TypeScript. */

import type { MixRow } from "./mix_rows.ts";

/** x[i] = a_i · x[src_i] + b_i · e[src_i] for the table's rows, rows of `width` (from the input x). */
export function referenceMixRows(
  x: Float32Array,
  e: Float32Array,
  width: number,
  rows: MixRow[],
): Float32Array {
  const out = x.slice();
  rows.forEach(({ src, a, b }, i) => {
    for (let c = 0; c < width; c++) out[i * width + c] = a * x[src * width + c] + b * e[src * width + c];
  });
  return out;
}
