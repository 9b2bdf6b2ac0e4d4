/**
 * Weights on the GPU. A matrix [rows, cols] keeps its checkpoint dtype (16-bit values packed in pairs
 * per u32), or is quantized as its rows are written (`quant`: q8 / q4 blocks, `model/quant.ts`). Each row is padded to a multiple of 16 bytes (`rowStride` elements) so kernels can use
 * aligned vec4<u32> loads, and a matrix larger than the device's binding limit is split by rows into
 * parts, each its own buffer.
 *
 * Storage "texture" keeps the same bytes in a read-only rgba32uint storage texture instead, 2^texShift 16-byte
 * blocks per texture row, each group of 4 rows with its rows' blocks interleaved (block b of part row m is
 * texel ((m >> 2) · blocksPerRow + b) · 4 + (m & 3); the last group padded with zero rows), so that the direct
 * kernel, 4 rows per invocation, walks its texels in order. CPU software GPUs (llvmpipe / lavapipe) fetch
 * texels several times faster than they load storage buffers at addresses that differ across SIMD lanes
 * (measured: a 4096 × 64 F32 GEMV, 0.76 vs 2.27 ms on one core; storage-texture loads ~1.5× sampled-texture
 * ones), so matmul weights live in textures there.
 */

import { decodeToF32, type DType, DTYPE_BYTES, DTYPE_CODE } from "../model/dtype.ts";
import { type QuantFormat, quantizeRows, quantRowBytes } from "../model/quant.ts";
import type { RowQuantizer } from "../model/quant_pool.ts";

export type WeightStorage = "buffer" | "texture";

export interface WeightPart {
  /** The part's rows (storage "buffer"). */
  buffer?: GPUBuffer;
  /** The part's rows as rgba32uint texels, 4-row groups interleaved, 2^texShift per texture row. */
  texture?: GPUTexture;
  texShift: number;
  /** First matrix row held by this part. */
  firstRow: number;
  rows: number;
}

export interface GpuMatrix {
  name: string;
  /** The checkpoint dtype: rows are written in it, and kept in it unless quantized. */
  dtype: DType;
  /** Quantized at load (`quant.ts` row layout), or null: kept in `dtype`. */
  quant: QuantFormat | null;
  rows: number;
  cols: number;
  /**
   * Elements between row starts (cols rounded up so a row is a whole number of 16-byte blocks); bytes for
   * quantized matrices (kernels read it as `row_stride`).
   */
  rowStride: number;
  parts: WeightPart[];
  storage: WeightStorage;
  /** Bytes the matrix occupies on the GPU. */
  bytes: number;
}

/** Row stride in elements: a row spans whole 16-byte blocks. */
export function rowStrideFor(dtype: DType, cols: number): number {
  const perBlock = 16 / DTYPE_BYTES[dtype];
  return Math.ceil(cols / perBlock) * perBlock;
}

/** Bytes of one matrix row on the GPU. */
export function rowBytesFor(dtype: DType, cols: number, quant: QuantFormat | null = null): number {
  return quant ? quantRowBytes(quant, cols) : rowStrideFor(dtype, cols) * DTYPE_BYTES[dtype];
}

/** The kernels' W_DTYPE code of a matrix: 0 f32, 1 f16, 2 bf16, 3 q8, 4 q4. */
export function weightCode(m: Pick<GpuMatrix, "dtype" | "quant">): number {
  return m.quant === "q8" ? 3 : m.quant === "q4" ? 4 : DTYPE_CODE[m.dtype];
}

/**
 * Rows per part so that one part fits a binding; a multiple of 4 where four rows fit, so that row pairs
 * (interleaved gate/up rows, RoPE rotation pairs) and the 4-row groups of the direct kernels never straddle parts.
 */
export function rowsPerPart(rowBytes: number, maxBindingBytes: number): number {
  return roundRows(Math.max(1, Math.floor(maxBindingBytes / rowBytes)));
}

/** A part's row count: a multiple of 4 where 4 rows fit (whole rotation pairs and gate/up pairs per 4 rows). */
function roundRows(fit: number): number {
  return fit >= 4 ? fit - (fit % 4) : fit >= 2 ? 2 : 1;
}

/** Texture width limit: the largest power of two within maxTextureDimension2D (8192 by default). */
function maxTexShift(maxTextureDimension: number): number {
  return Math.floor(Math.log2(Math.max(1, maxTextureDimension)));
}

export interface MatrixStorageOptions {
  storage?: WeightStorage;
  /** Quantize the rows as they are written (`quant.ts`). */
  quant?: QuantFormat | null;
  /** The device's maxTextureDimension2D (storage "texture"). */
  maxTextureDimension?: number;
}

/** Allocates a matrix [rows, cols] of `dtype` on the GPU, split into parts that each fit a binding. */
export function createMatrix(
  device: GPUDevice,
  name: string,
  dtype: DType,
  rows: number,
  cols: number,
  maxBindingBytes: number,
  opts: MatrixStorageOptions = {},
): GpuMatrix {
  const storage = opts.storage ?? "buffer";
  const quant = opts.quant ?? null;
  const rowBytes = rowBytesFor(dtype, cols, quant);
  const stride = quant ? rowBytes : rowStrideFor(dtype, cols);
  let per = rowsPerPart(rowBytes, maxBindingBytes);
  const shiftMax = maxTexShift(opts.maxTextureDimension ?? 8192);
  if (storage === "texture") {
    // A texture holds at most maxDim × maxDim texels of 16 bytes (rows padded to a multiple of 4).
    const fit = Math.floor((2 ** (2 * shiftMax) * 16) / rowBytes / 4) * 4;
    per = Math.min(per, roundRows(fit));
  }
  const parts: WeightPart[] = [];
  for (let first = 0; first < rows; first += per) {
    const n = Math.min(per, rows - first);
    const label = `${name}[${first}:${first + n}]`;
    if (storage === "texture") {
      const texels = Math.max(1, (Math.ceil(n / 4) * 4 * rowBytes) / 16);
      const texShift = Math.min(shiftMax, Math.ceil(Math.log2(texels)));
      const texture = device.createTexture({
        label,
        size: [2 ** texShift, Math.ceil(texels / 2 ** texShift)],
        format: "rgba32uint",
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC,
      });
      parts.push({ texture, texShift, firstRow: first, rows: n });
      continue;
    }
    const buffer = device.createBuffer({
      label,
      size: Math.max(16, n * rowBytes),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    parts.push({ buffer, texShift: 0, firstRow: first, rows: n });
  }
  return { name, dtype, quant, rows, cols, rowStride: stride, parts, storage, bytes: rows * rowBytes };
}

/**
 * Writes part rows [first, first + n) of a texture part (`data`: their blocks, row after row) in the part's
 * 4-row-group interleaved order: whole groups through one reused buffer of at most ~4 MiB, rows of a group
 * written only in part (a stacked matrix whose pieces start mid-group) block by block.
 */
function writeTextureRows(
  device: GPUDevice,
  part: WeightPart,
  first: number,
  n: number,
  data: Uint8Array<ArrayBuffer>,
): void {
  const rowBytes = data.byteLength / n, bpr = rowBytes / 16;
  const end = first + n;
  const groupFirst = Math.min(end, Math.ceil(first / 4) * 4);
  const groupEnd = Math.max(groupFirst, Math.floor(end / 4) * 4);
  const alone = (m: number) => {
    const src = (m - first) * rowBytes, base = ((m >> 2) * bpr * 4 + (m & 3)) * 16;
    for (let b = 0; b < bpr; b++) {
      writeTexels(device, part, base + b * 64, data.subarray(src + b * 16, src + b * 16 + 16));
    }
  };
  for (let m = first; m < groupFirst; m++) alone(m);
  // Whole groups, copied word by word (a view per 16-byte block would cost an object each).
  const step = Math.max(4, Math.floor((4 << 20) / (4 * rowBytes)) * 4);
  const out = new Uint32Array(Math.min(step, groupEnd - groupFirst) * rowBytes / 4);
  const words = data.byteOffset % 4 === 0
    ? new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4)
    : new Uint32Array(data.slice().buffer);
  for (let g0 = groupFirst; g0 < groupEnd; g0 += step) {
    const g1 = Math.min(groupEnd, g0 + step);
    for (let m = g0; m < g1; m++) {
      const src = ((m - first) * rowBytes) / 4, j = m & 3, g = (m - g0) >> 2;
      for (let b = 0; b < bpr; b++) {
        const from = src + 4 * b, to = ((g * bpr + b) * 4 + j) * 4;
        out[to] = words[from];
        out[to + 1] = words[from + 1];
        out[to + 2] = words[from + 2];
        out[to + 3] = words[from + 3];
      }
    }
    const bytes = new Uint8Array(out.buffer, 0, (g1 - g0) * rowBytes);
    writeTexels(device, part, g0 * rowBytes, bytes);
  }
  for (let m = groupEnd; m < end; m++) alone(m);
}

/** Writes `data` (whole 16-byte blocks) at byte `offset` of a texture part's linear texel order. */
function writeTexels(
  device: GPUDevice,
  part: WeightPart,
  offset: number,
  data: Uint8Array<ArrayBuffer>,
): void {
  const width = 2 ** part.texShift;
  let t = offset / 16, done = 0;
  const count = data.byteLength / 16;
  while (done < count) {
    const x = t % width, y = Math.floor(t / width);
    // A partial texture row, or as many whole rows as remain.
    const n = x !== 0 || count - done < width ? Math.min(width - x, count - done) : 0;
    const rowsHere = n ? 1 : Math.floor((count - done) / width);
    const w = n || width;
    device.queue.writeTexture(
      { texture: part.texture!, origin: [x, y] },
      data,
      { offset: done * 16, bytesPerRow: w * 16 },
      [w, rowsHere],
    );
    done += w * rowsHere;
    t += w * rowsHere;
  }
}

/**
 * Writes raw checkpoint rows (n × cols × dtype bytes, unpadded) into the matrix from row `firstRow` on,
 * padding each row to the stride (or quantizing it) and crossing part boundaries as needed. With a
 * `quantizer` (a pool of workers), quantized rows are written when it hands them back: wait for it (its
 * `drain`) before relying on the matrix.
 */
export function writeRows(
  device: GPUDevice,
  m: GpuMatrix,
  firstRow: number,
  raw: Uint8Array<ArrayBuffer>,
  quantizer?: RowQuantizer,
): void {
  const eb = DTYPE_BYTES[m.dtype];
  const srcRowBytes = m.cols * eb, dstRowBytes = rowBytesFor(m.dtype, m.cols, m.quant);
  const n = raw.byteLength / srcRowBytes;
  // Quantizing decodes rows to f32 first: a few MiB at a time, not a whole 1 GiB embedding.
  // Chunks of whole 4-row groups (texture rows are written a group at a time).
  const chunk = Math.max(4, Math.floor((16 << 20) / (m.cols * 16)) * 4);
  if (m.quant && n > chunk) {
    for (let r = 0; r < n; r += chunk) {
      const end = Math.min(n, r + chunk);
      writeRows(device, m, firstRow + r, raw.subarray(r * srcRowBytes, end * srcRowBytes), quantizer);
    }
    return;
  }
  for (const part of m.parts) {
    const from = Math.max(firstRow, part.firstRow), to = Math.min(firstRow + n, part.firstRow + part.rows);
    if (from >= to) continue;
    const src = raw.subarray((from - firstRow) * srcRowBytes, (to - firstRow) * srcRowBytes);
    const place = (data: Uint8Array<ArrayBuffer>) => {
      if (part.texture) writeTextureRows(device, part, from - part.firstRow, to - from, data);
      else device.queue.writeBuffer(part.buffer!, (from - part.firstRow) * dstRowBytes, data);
    };
    if (m.quant && quantizer) {
      quantizer.submit({ format: m.quant, dtype: m.dtype, raw: src, rows: to - from, cols: m.cols }, place);
    } else if (m.quant) place(quantizeRows(m.quant, decodeToF32(m.dtype, src), to - from, m.cols));
    else if (m.rowStride !== m.cols) {
      const data = new Uint8Array((to - from) * dstRowBytes);
      for (let r = 0; r < to - from; r++) {
        data.set(src.subarray(r * srcRowBytes, (r + 1) * srcRowBytes), r * dstRowBytes);
      }
      place(data);
    } else place(src);
  }
}

/**
 * Uploads a row-major matrix given as raw checkpoint bytes (rows × cols × dtype bytes, unpadded).
 * `maxBindingBytes` is the device's maxStorageBufferBindingSize (tests pass a small value to force splits).
 */
export function uploadMatrix(
  device: GPUDevice,
  name: string,
  dtype: DType,
  rows: number,
  cols: number,
  raw: Uint8Array<ArrayBuffer>,
  maxBindingBytes: number,
  opts: MatrixStorageOptions = {},
  quantizer?: RowQuantizer,
): GpuMatrix {
  const m = createMatrix(device, name, dtype, rows, cols, maxBindingBytes, opts);
  writeRows(device, m, 0, raw, quantizer);
  return m;
}
