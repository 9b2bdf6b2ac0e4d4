/**
 * RMSNorm of a step's rows (kernels/rmsnorm.wgsl): y = x · rsqrt(mean(x²) + eps) · weight, f32. Most norms
 * are fused into the matmul that reads them (Matmul `norm`); this kernel runs the final norm before the LM
 * head (only the rows that get logits) and, on wide models on software GPUs, the norms of steps of few rows
 * into the row texture that the next matmuls read.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { unusedQuantizedRow, unusedRowTexture } from "../../gpu/buffers.ts";
import type { QuantizedRow } from "../matmul/quantize_x.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

export interface RmsNormIO {
  x: GPUBuffer;
  /** f32 [hidden]. */
  weight: GPUBuffer;
  y: GPUBuffer;
  /** The step uniform: rows n_rows, or n_out with `outRows`. */
  step: GPUBuffer;
  /** Output row j normalizes x row outRows[j] (j < n_out): the rows that get logits. */
  outRows: GPUBuffer;
  /** Each row of y that this row texture has also goes there (a few-row step's matmuls read it there). */
  texture?: GPUTexture;
  /** Row 0 of y also goes here in int8 blocks (quantize_x.ts's layout: the quantized matmuls' integer path). */
  quantized?: QuantizedRow;
}

export interface RmsNormShape {
  hidden: number;
  eps: number;
  /** Invocations per workgroup (the backend profile's `normWorkgroup`). */
  workgroup: number;
  /** Normalize the rows listed in `outRows` rather than every row. */
  gather?: boolean;
}

export class RmsNorm implements StepOp {
  private readonly dispatch: Dispatch;

  constructor(kernels: KernelCache, io: RmsNormIO, shape: RmsNormShape) {
    const device = kernels.gpu.device;
    const q = io.quantized;
    const flags = (shape.gather ? 1 : 0) | (io.texture ? 2 : 0) | (q ? 4 : 0) | (q?.format === "q8" ? 8 : 0);
    this.dispatch = bindKernel(kernels, "rmsnorm", { WG: shape.workgroup }, [
      uniformBuffer(device, "rmsnorm", [["u32", shape.hidden], ["f32", shape.eps], ["u32", flags]]),
      io.step,
      io.x,
      io.weight,
      io.y,
      io.outRows,
      io.texture?.createView() ?? unusedRowTexture(device),
      q?.texture.createView() ?? unusedQuantizedRow(device),
    ]);
  }

  /** One workgroup per row. */
  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows > 0) record(pass, this.dispatch, nRows);
  }
}

/**
 * An RMSNorm into a row texture that runs only in steps of up to `maxRows` rows (the matmuls of larger steps
 * read x with the norm fused).
 */
export class RowTextureNorm implements StepOp {
  constructor(private readonly norm: RmsNorm, private readonly maxRows: number) {}

  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows <= this.maxRows) this.norm.encode(pass, nRows);
  }
}
