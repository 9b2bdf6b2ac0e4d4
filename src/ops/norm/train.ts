/**
 * Training RMSNorm over rows of any width (kernels/rmsnorm_train.wgsl, rmsnorm_backward.wgsl,
 * rmsnorm_dweight.wgsl): the hidden-size norms, and Qwen3's per-head q/k norms as rows = N · heads of width
 * head_dim. The forward saves 1/RMS per row for the backward. Bound once (with the weight gradient's scratch of
 * partial sums); `forward` / `backward` allocate nothing.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";

/** Rows per partial sum of the weight gradient's first pass. */
const DWEIGHT_CHUNK_ROWS = 64;

export interface RmsNormTrainIO {
  /** f32 [rows, width]. */
  x: GPUBuffer;
  /** f32 [width]. */
  weight: GPUBuffer;
  /** f32 [rows, width], written by the forward. */
  y: GPUBuffer;
  /** f32 [rows]: 1 / RMS per row, written by the forward, read by the backward. */
  rstd: GPUBuffer;
  dy: GPUBuffer;
  /** Input gradient [rows, width]: overwritten, or added to with `accumulateDx`. */
  dx: GPUBuffer;
  /** Weight gradient [width]: always added to (null: a frozen weight, no gradient computed). */
  dweight: GPUBuffer | null;
}

export interface RmsNormTrainShape {
  rows: number;
  width: number;
  eps: number;
  /** Threads per row workgroup, a power of two (the backend profile's `normWorkgroup`). */
  workgroup: number;
  /** dx += the norm's input gradient (the residual stream's gradient) rather than dx = it. */
  accumulateDx?: boolean;
}

export class RmsNormTrain {
  private readonly fwd: Dispatch;
  private readonly bwd: Dispatch;
  private readonly dweight: Dispatch | null = null;
  private readonly dweightSum: Dispatch | null = null;
  private readonly rows: number;
  private readonly chunks: number;
  private readonly columnGroups: number;

  constructor(kernels: KernelCache, readonly io: RmsNormTrainIO, shape: RmsNormTrainShape) {
    const { rows, width, eps, workgroup: WG } = shape;
    const op = `rmsnorm ${rows}×${width}`;
    for (const k of ["x", "y", "dy", "dx"] as const) needFloats(op, k, io[k], rows * width);
    needFloats(op, "weight", io.weight, width);
    if (io.dweight) needFloats(op, "dweight", io.dweight, width);
    needFloats(op, "rstd", io.rstd, rows);
    const device = kernels.gpu.device;
    const p = (fields: Array<["u32" | "f32", number]>) => paramsBuffer(device, "rmsnorm_train", fields);
    this.fwd = bindKernel(kernels, "rmsnorm_train", { WG }, [
      p([["u32", rows], ["u32", width], ["f32", eps]]),
      io.x,
      io.weight,
      io.y,
      io.rstd,
    ]);
    this.bwd = bindKernel(kernels, "rmsnorm_backward", { WG }, [
      p([["u32", rows], ["u32", width], ["u32", shape.accumulateDx ? 1 : 0]]),
      io.x,
      io.weight,
      io.dy,
      io.rstd,
      io.dx,
    ]);
    this.rows = rows;
    const chunks = this.chunks = Math.ceil(rows / DWEIGHT_CHUNK_ROWS);
    this.columnGroups = Math.ceil(width / 64);
    if (!io.dweight) return;
    if (chunks > 65535) throw new Error(`${op}: more than ${65535 * DWEIGHT_CHUNK_ROWS} rows`);
    const partial = storageBuffer(device, "rmsnorm dweight partials", chunks * width * 4);
    this.dweight = bindKernel(kernels, "rmsnorm_dweight", { WG: 64 }, [
      p([["u32", rows], ["u32", width], ["u32", DWEIGHT_CHUNK_ROWS]]),
      io.x,
      io.dy,
      io.rstd,
      partial,
    ]);
    this.dweightSum = bindKernel(kernels, "rmsnorm_dweight_sum", { WG: 64 }, [
      p([["u32", chunks], ["u32", width]]),
      partial,
      io.dweight,
    ]);
  }

  /** y and rstd from x: one workgroup per row. */
  forward(pass: ComputeRecorder): void {
    recordFlat(pass, this.fwd, this.rows);
  }

  /** dx from dy (one workgroup per row), then dweight += in two passes (chunks of rows, then their sum). */
  backward(pass: ComputeRecorder): void {
    recordFlat(pass, this.bwd, this.rows);
    if (!this.dweight || !this.dweightSum) return;
    record(pass, this.dweight, this.columnGroups, this.chunks);
    record(pass, this.dweightSum, this.columnGroups);
  }
}
