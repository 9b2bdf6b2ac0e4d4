/**
 * Weight-only quantization at load (`--quant q8` / `q4`), block-wise with one f16 scale per block of 32
 * weights along a row. A quantized row on the GPU is
 *
 *   [ceil(cols / 32) blocks of data][one f16 scale per block][zero padding to a 16-byte multiple]
 *
 * q8: a block is 32 signed bytes q, weight = q · scale, scale = max|w| / 127 (symmetric, q in −127..127).
 * q4: a block is 32 nibbles (element 2i in the low nibble of byte i), weight = (q − 8) · scale with
 *     scale = w* / −8 for w* the block's value of largest magnitude (so w* is exact; as llama.cpp's Q4_0).
 * The data of every row is a whole number of 16-byte blocks, so the scales start on a 16-byte boundary.
 * Columns past `cols` in the last block are zero. Kernels decode in `decodeQ8` / `decodeQ4` order.
 */

import { f16ToF32, f32ToF16 } from "./dtype.ts";

export type QuantFormat = "q8" | "q4";
export const QUANT_FORMATS: readonly QuantFormat[] = ["q8", "q4"];
/** Weights per block (one scale each). */
export const QUANT_BLOCK = 32;

export function isQuantFormat(s: string): s is QuantFormat {
  return (QUANT_FORMATS as readonly string[]).includes(s);
}

/**
 * The tensors `--quant` quantizes: the base model's projections and the LM head (a tied head as a copy of the
 * embedding of its own). The gathered embedding, the norms and FlexiDepth's small routers and adapters keep the
 * checkpoint's precision, so routing decisions see the weights they were trained with.
 */
export function isQuantizedTensor(name: string): boolean {
  return name === "lm_head.weight" ||
    /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/.test(name);
}

/** Blocks per row. */
export function quantBlocks(cols: number): number {
  return Math.ceil(cols / QUANT_BLOCK);
}

/** Bytes of a row's data (before its scales). */
export function quantDataBytes(format: QuantFormat, cols: number): number {
  return quantBlocks(cols) * (format === "q8" ? QUANT_BLOCK : QUANT_BLOCK / 2);
}

/** Bytes of a quantized row: data, scales, padding to 16 bytes. */
export function quantRowBytes(format: QuantFormat, cols: number): number {
  return Math.ceil((quantDataBytes(format, cols) + 2 * quantBlocks(cols)) / 16) * 16;
}

/** Quantizes `rows` rows of `cols` f32 values into the row layout above. */
export function quantizeRows(
  format: QuantFormat,
  values: Float32Array,
  rows: number,
  cols: number,
): Uint8Array<ArrayBuffer> {
  const rowBytes = quantRowBytes(format, cols), dataBytes = quantDataBytes(format, cols);
  const blocks = quantBlocks(cols), q8 = format === "q8";
  const out = new Uint8Array(rows * rowBytes);
  const signed = new Int8Array(out.buffer);
  const view = new DataView(out.buffer);
  for (let r = 0; r < rows; r++) {
    const src = r * cols, dst = r * rowBytes;
    for (let b = 0; b < blocks; b++) {
      const k0 = b * QUANT_BLOCK, k1 = Math.min(cols, k0 + QUANT_BLOCK);
      let peak = 0, mag = 0;
      for (let k = k0; k < k1; k++) {
        const v = values[src + k], a = v < 0 ? -v : v;
        if (a > mag) {
          mag = a;
          peak = v;
        }
      }
      // The scale as the kernel sees it (rounded to f16), so that q is chosen against the stored value.
      const bits = f32ToF16(q8 ? mag / 127 : peak / -8);
      const scale = f16ToF32(bits);
      view.setUint16(dst + dataBytes + 2 * b, bits, true);
      const inv = scale === 0 ? 0 : 1 / scale;
      if (q8) {
        for (let k = k0; k < k1; k++) {
          const q = Math.round(values[src + k] * inv);
          signed[dst + k] = q > 127 ? 127 : q < -127 ? -127 : q;
        }
        continue;
      }
      // q4: two nibbles per byte; padding columns of the last block decode to zero (nibble 8).
      for (let k = k0; k < k0 + QUANT_BLOCK; k += 2) {
        const lo = k < k1 ? Math.round(values[src + k] * inv) + 8 : 8;
        const hi = k + 1 < k1 ? Math.round(values[src + k + 1] * inv) + 8 : 8;
        out[dst + (k >> 1)] = (lo > 15 ? 15 : lo < 0 ? 0 : lo) | ((hi > 15 ? 15 : hi < 0 ? 0 : hi) << 4);
      }
    }
  }
  return out;
}

/** The weights a quantized matrix holds (plain-TypeScript reference of the kernels' decoding). */
export function dequantizeRows(
  format: QuantFormat,
  bytes: Uint8Array,
  rows: number,
  cols: number,
): Float32Array<ArrayBuffer> {
  const rowBytes = quantRowBytes(format, cols), dataBytes = quantDataBytes(format, cols);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    for (let k = 0; k < cols; k++) {
      const scale = f16ToF32(view.getUint16(base + dataBytes + 2 * Math.floor(k / QUANT_BLOCK), true));
      const q = format === "q8"
        ? view.getInt8(base + k)
        : ((bytes[base + (k >> 1)] >> ((k & 1) * 4)) & 15) - 8;
      out[r * cols + k] = q * scale;
    }
  }
  return out;
}

/** Round-trips values through a format: what a quantized matrix computes with. */
export function quantizeValues(format: QuantFormat, values: Float32Array, rows: number, cols: number) {
  return dequantizeRows(format, quantizeRows(format, values, rows, cols), rows, cols);
}
