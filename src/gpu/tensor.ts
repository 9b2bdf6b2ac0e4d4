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

/**
 * "windowed": a storage buffer that can also be bound as a uniform of its first UNIFORM_WINDOW bytes (it is at
 * least that large): the one-row texture matmul reads x and norm weights that way on software GPUs (gemv_tex.wgsl).
 */
export type BufferUse = "storage" | "uniform" | "windowed";

/** Bytes of a windowed buffer's uniform view (the maxUniformBufferBindingSize every adapter offers). */
export const UNIFORM_WINDOW = 65536;

function usageOf(use: BufferUse): number {
  const rw = GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  if (use === "uniform") return GPUBufferUsage.UNIFORM | rw;
  return GPUBufferUsage.STORAGE | (use === "windowed" ? GPUBufferUsage.UNIFORM : 0) | rw;
}

function sizeFor(bytes: number, use: BufferUse): number {
  return Math.max(use === "windowed" ? UNIFORM_WINDOW : 16, Math.ceil(bytes / 16) * 16);
}

/** A GPU buffer initialised from data (size rounded up to 16 bytes, or to the window). */
export function bufferFrom(
  device: GPUDevice,
  label: string,
  data: ArrayBufferView,
  use: BufferUse = "storage",
): GPUBuffer {
  const buffer = device.createBuffer({ label, size: sizeFor(data.byteLength, use), usage: usageOf(use) });
  device.queue.writeBuffer(buffer, 0, data as ArrayBufferView<ArrayBuffer>);
  return buffer;
}

/** An empty storage buffer of at least `bytes` bytes (windowed: see BufferUse). */
export function storageBuffer(
  device: GPUDevice,
  label: string,
  bytes: number,
  use: "storage" | "windowed" = "storage",
): GPUBuffer {
  return device.createBuffer({ label, size: sizeFor(bytes, use), usage: usageOf(use) });
}

/** Whether `b` can back a uniform window (see BufferUse). */
export function isWindowed(b: GPUBuffer): boolean {
  return (b.usage & GPUBufferUsage.UNIFORM) !== 0 && (b.usage & GPUBufferUsage.STORAGE) !== 0 &&
    b.size >= UNIFORM_WINDOW;
}

/**
 * One activation row of `n` floats as an rgba32float texture of ceil(n / 4) texels (zero past n): rmsnorm.wgsl
 * writes one, and gemv_tex.wgsl reads its x there on software GPUs (a texel load beats a uniform gather).
 */
export function rowTexture(device: GPUDevice, label: string, n: number): GPUTexture {
  return device.createTexture({
    label,
    size: [Math.max(1, Math.ceil(n / 4)), 1],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_SRC | GPUTextureUsage.COPY_DST,
  });
}

const unusedRowTextures = new WeakMap<GPUDevice, GPUTextureView>();

/** A one-texel row texture for kernels whose row-texture binding a dispatch does not use. */
export function unusedRowTexture(device: GPUDevice): GPUTextureView {
  let view = unusedRowTextures.get(device);
  if (!view) {
    view = rowTexture(device, "unused_row", 1).createView();
    unusedRowTextures.set(device, view);
  }
  return view;
}

/** Reads a buffer back to the host (slow: tests, diagnostics and one-off reads only). */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer,
  bytes = src.size,
  offset = 0,
): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}

/** Reads a row texture (rowTexture) back as its floats, 4 per texel (tests and diagnostics only). */
export async function readRowTexture(device: GPUDevice, texture: GPUTexture): Promise<Float32Array> {
  const bytesPerRow = Math.ceil(texture.width * 16 / 256) * 256;
  const staging = device.createBuffer({
    size: bytesPerRow,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyTextureToBuffer({ texture }, { buffer: staging, bytesPerRow }, [texture.width, 1]);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, texture.width * 16));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Uniform struct builder: u32 / f32 fields in declaration order (each 4 bytes, 16-byte padded). */
export function uniformData(fields: Array<["u32" | "f32" | "i32", number]>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach(([t, v], i) => {
    if (t === "f32") view.setFloat32(i * 4, v, true);
    else if (t === "i32") view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  return buf;
}
