/// <reference lib="deno.worker" />
/**
 * A worker of the quantization pool (quant_pool.ts): decodes checkpoint rows to f32 and quantizes them with
 * the same code as the main thread (quant.ts), so a pooled load is byte for byte an inline one.
 */

import { decodeToF32 } from "./dtype.ts";
import { quantizeRows } from "./quant.ts";
import type { QuantJob, QuantResult } from "./quant_pool.ts";

self.onmessage = (e: MessageEvent<QuantJob>) => {
  const { id, format, dtype, raw, rows, cols } = e.data;
  try {
    const out = quantizeRows(format, decodeToF32(dtype, raw), rows, cols);
    self.postMessage({ id, out } satisfies QuantResult, [out.buffer]);
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.message : String(err) } satisfies QuantResult);
  }
};
