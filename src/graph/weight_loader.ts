/**
 * Reads checkpoint tensors onto the GPU one at a time (never a whole shard in memory), in the layouts of
 * model/layout.ts: matrices keep their checkpoint dtype or are quantized as they are written (on a pool of
 * workers when one is open), split by rows past the binding limit; vectors become f32.
 */

import type { Checkpoint } from "../model/checkpoint.ts";
import { readTensorBytes, type TensorInfo } from "../model/safetensors.ts";
import { decodeToF32, DTYPE_BYTES } from "../model/dtype.ts";
import { isQuantizedTensor, type QuantFormat } from "../model/quant.ts";
import type { QuantPool } from "../model/quant_pool.ts";
import { interleaveRows, ropePairRows } from "../model/layout.ts";
import {
  createMatrix,
  type GpuMatrix,
  type MatrixStorageOptions,
  uploadMatrix,
  type WeightStorage,
  writeRows,
} from "../gpu/matrix.ts";
import { bufferFrom } from "../gpu/buffers.ts";
import { GpuError } from "../errors.ts";

/** Bytes of checkpoint read so far, of the total: a loader's progress. */
export type LoadProgress = (doneBytes: number, totalBytes: number) => void;

export interface LoaderLayout {
  storage: WeightStorage;
  /** The device's maxTextureDimension2D. */
  maxTextureDimension: number;
  /** Bytes one buffer of weights may hold. */
  maxBinding: number;
  /** Quantize the base model's projections (`isQuantizedTensor`) as they are written. */
  quant: QuantFormat | null;
  /** q and k rows in rotation pairs (`ropePairRows`). */
  ropePairs: boolean;
}

export class WeightLoader {
  /** Bytes of weights on the GPU so far. */
  bytes = 0;
  private read = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly ck: Checkpoint,
    private readonly layout: LoaderLayout,
    private readonly pool?: QuantPool,
    private readonly onProgress?: LoadProgress,
  ) {}

  /** A tensor's bytes as the GPU keeps them: q and k rows in rotation pairs when the epilogue ropes. */
  private async rowsOf(info: TensorInfo): Promise<Uint8Array<ArrayBuffer>> {
    const raw = await readTensorBytes(info);
    if (!this.layout.ropePairs || !/\.(q|k)_proj\.weight$/.test(info.name)) return raw;
    return ropePairRows(raw, info.shape[0], this.ck.config.headDim);
  }

  private tensor(name: string): TensorInfo {
    const info = this.ck.tensors.get(name);
    if (!info) throw new GpuError(`tensor ${name} is missing from the checkpoint`);
    return info;
  }

  private advance(checkpointBytes: number, gpuBytes: number): void {
    this.read += checkpointBytes;
    this.bytes += gpuBytes;
    this.onProgress?.(this.read, this.ck.totalBytes);
  }

  /** Where a tensor goes: the base model's projections quantized when asked. */
  private storageOf(name: string): MatrixStorageOptions {
    const { storage, maxTextureDimension, quant } = this.layout;
    return { storage, maxTextureDimension, quant: quant && isQuantizedTensor(name) ? quant : null };
  }

  /**
   * One matrix; `storage` overrides where it lives (the embedding table is a buffer: its kernel gathers);
   * `role`: the tensor whose storage it takes (a tied head: the embedding's values, stored as lm_head.weight).
   */
  async matrix(name: string, storage?: WeightStorage, role = name): Promise<GpuMatrix> {
    const info = this.tensor(name);
    if (info.shape.length !== 2) throw new GpuError(`tensor ${name} is not a matrix`);
    await this.pool?.room();
    const raw = await this.rowsOf(info);
    const as = storage ? { ...this.storageOf(role), storage, quant: null } : this.storageOf(role);
    const [rows, cols] = info.shape;
    const m = uploadMatrix(
      this.device,
      name,
      info.dtype,
      rows,
      cols,
      raw,
      this.layout.maxBinding,
      as,
      this.pool,
    );
    this.advance(info.byteLength, m.bytes);
    return m;
  }

  /** Several projections with the same columns, stacked by rows, streamed in one by one. */
  async stacked(label: string, names: string[]): Promise<GpuMatrix> {
    const infos = names.map((n) => this.tensor(n));
    const dtype = infos[0].dtype, cols = infos[0].shape[1];
    if (infos.some((t) => t.dtype !== dtype || t.shape.length !== 2 || t.shape[1] !== cols)) {
      throw new GpuError(`tensors ${names.join(", ")} differ in dtype or columns; they cannot be stacked`);
    }
    const rows = infos.reduce((s, t) => s + t.shape[0], 0);
    const m = createMatrix(
      this.device,
      label,
      dtype,
      rows,
      cols,
      this.layout.maxBinding,
      this.storageOf(names[0]),
    );
    let row = 0;
    for (const t of infos) {
      await this.pool?.room();
      writeRows(this.device, m, row, await this.rowsOf(t), this.pool);
      row += t.shape[0];
      this.advance(t.byteLength, 0);
    }
    this.advance(0, m.bytes);
    return m;
  }

  /** Two matrices of one shape with their rows interleaved (a0, b0, a1, b1, …), written in chunks. */
  async interleaved(label: string, [a, b]: [string, string]): Promise<GpuMatrix> {
    const ta = this.tensor(a), tb = this.tensor(b);
    if (ta.dtype !== tb.dtype || ta.shape.length !== 2 || ta.shape.join() !== tb.shape.join()) {
      throw new GpuError(`tensors ${a} and ${b} differ in dtype or shape; they cannot be interleaved`);
    }
    const [rows, cols] = ta.shape;
    const m = createMatrix(
      this.device,
      label,
      ta.dtype,
      2 * rows,
      cols,
      this.layout.maxBinding,
      this.storageOf(a),
    );
    const rowBytes = cols * DTYPE_BYTES[ta.dtype];
    await this.pool?.room();
    const ra = await readTensorBytes(ta), rb = await readTensorBytes(tb);
    const chunk = Math.max(1, Math.floor((8 << 20) / rowBytes));
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const n = Math.min(chunk, rows - r0);
      writeRows(this.device, m, 2 * r0, interleaveRows(ra, rb, rowBytes, r0, n), this.pool);
    }
    this.advance(ta.byteLength + tb.byteLength, m.bytes);
    return m;
  }

  /** a · b for a [1, H] and b [H, B], in f64, as an f32 vector [B] (two linear layers folded into one). */
  async product(label: string, aName: string, bName: string): Promise<GPUBuffer> {
    const ta = this.tensor(aName), tb = this.tensor(bName);
    const [H, B] = tb.shape;
    if (ta.shape.length !== 2 || ta.shape[0] !== 1 || ta.shape[1] !== H) {
      throw new GpuError(`tensor ${aName} [${ta.shape}] cannot multiply ${bName} [${tb.shape}]`);
    }
    const a = decodeToF32(ta.dtype, await readTensorBytes(ta)),
      b = decodeToF32(tb.dtype, await readTensorBytes(tb));
    const out = new Float32Array(B);
    for (let j = 0; j < B; j++) {
      let sum = 0;
      for (let h = 0; h < H; h++) sum += a[h] * b[h * B + j];
      out[j] = sum;
    }
    this.advance(ta.byteLength + tb.byteLength, out.byteLength);
    return bufferFrom(this.device, label, out);
  }

  /** A vector (norm weights) as f32; windowed where texture matmuls read it through a uniform view. */
  async vector(name: string): Promise<GPUBuffer> {
    const info = this.tensor(name);
    const values = decodeToF32(info.dtype, await readTensorBytes(info));
    this.advance(info.byteLength, values.byteLength);
    return bufferFrom(this.device, name, values, this.layout.storage === "texture" ? "windowed" : "storage");
  }
}
