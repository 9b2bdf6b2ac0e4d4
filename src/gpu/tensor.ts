/**
 * Weights on the GPU. A matrix [rows, cols] keeps its checkpoint dtype (16-bit values packed in pairs
 * per u32). Each row is padded to a multiple of 16 bytes (`rowStride` elements) so kernels can use
 * aligned vec4<u32> loads, and a matrix larger than the device's binding limit is split by rows into
 * parts, each its own buffer.
 */

import { type DType, DTYPE_BYTES } from "../model/dtype.ts";

export interface WeightPart {
  buffer: GPUBuffer;
  /** First matrix row held by this part. */
  firstRow: number;
  rows: number;
}

export interface GpuMatrix {
  name: string;
  dtype: DType;
  rows: number;
  cols: number;
  /** Elements between row starts (cols rounded up so a row is a whole number of 16-byte blocks). */
  rowStride: number;
  parts: WeightPart[];
  /** Bytes the matrix occupies on the GPU. */
  bytes: number;
}

/** Row stride in elements: a row spans whole 16-byte blocks. */
export function rowStrideFor(dtype: DType, cols: number): number {
  const perBlock = 16 / DTYPE_BYTES[dtype];
  return Math.ceil(cols / perBlock) * perBlock;
}

/**
 * Rows per part so that one part fits a binding; even where two rows fit, so that row pairs (interleaved
 * gate/up rows) never straddle parts.
 */
export function rowsPerPart(dtype: DType, cols: number, maxBindingBytes: number): number {
  const rowBytes = rowStrideFor(dtype, cols) * DTYPE_BYTES[dtype];
  const fit = Math.max(1, Math.floor(maxBindingBytes / rowBytes));
  return fit >= 2 ? fit - (fit % 2) : 1;
}

/** Allocates a matrix [rows, cols] of `dtype` on the GPU, split into parts that each fit a binding. */
export function createMatrix(
  device: GPUDevice,
  name: string,
  dtype: DType,
  rows: number,
  cols: number,
  maxBindingBytes: number,
): GpuMatrix {
  const stride = rowStrideFor(dtype, cols);
  const rowBytes = stride * DTYPE_BYTES[dtype];
  const per = rowsPerPart(dtype, cols, maxBindingBytes);
  const parts: WeightPart[] = [];
  for (let first = 0; first < rows; first += per) {
    const n = Math.min(per, rows - first);
    const buffer = device.createBuffer({
      label: `${name}[${first}:${first + n}]`,
      size: Math.max(16, n * rowBytes),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    parts.push({ buffer, firstRow: first, rows: n });
  }
  return { name, dtype, rows, cols, rowStride: stride, parts, bytes: rows * rowBytes };
}

/**
 * Writes raw checkpoint rows (n × cols × dtype bytes, unpadded) into the matrix from row `firstRow` on,
 * padding each row to the stride and crossing part boundaries as needed.
 */
export function writeRows(
  device: GPUDevice,
  m: GpuMatrix,
  firstRow: number,
  raw: Uint8Array<ArrayBuffer>,
): void {
  const eb = DTYPE_BYTES[m.dtype];
  const srcRowBytes = m.cols * eb, dstRowBytes = m.rowStride * eb;
  const n = raw.byteLength / srcRowBytes;
  for (const part of m.parts) {
    const from = Math.max(firstRow, part.firstRow), to = Math.min(firstRow + n, part.firstRow + part.rows);
    if (from >= to) continue;
    const src = raw.subarray((from - firstRow) * srcRowBytes, (to - firstRow) * srcRowBytes);
    let data = src;
    if (m.rowStride !== m.cols) {
      data = new Uint8Array((to - from) * dstRowBytes);
      for (let r = 0; r < to - from; r++) {
        data.set(src.subarray(r * srcRowBytes, (r + 1) * srcRowBytes), r * dstRowBytes);
      }
    }
    device.queue.writeBuffer(part.buffer, (from - part.firstRow) * dstRowBytes, data);
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
): GpuMatrix {
  const m = createMatrix(device, name, dtype, rows, cols, maxBindingBytes);
  writeRows(device, m, 0, raw);
  return m;
}

export type BufferUse = "storage" | "uniform";

/** A GPU buffer initialised from data (size rounded up to 16 bytes). */
export function bufferFrom(
  device: GPUDevice,
  label: string,
  data: ArrayBufferView,
  use: BufferUse = "storage",
): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const usage = (use === "uniform" ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) |
    GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const buffer = device.createBuffer({ label, size, usage });
  device.queue.writeBuffer(buffer, 0, data as ArrayBufferView<ArrayBuffer>);
  return buffer;
}

/** An empty storage buffer of at least `bytes` bytes. */
export function storageBuffer(device: GPUDevice, label: string, bytes: number): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
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
