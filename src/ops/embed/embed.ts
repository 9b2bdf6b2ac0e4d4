/**
 * The embedding gather (kernels/embed.wgsl): x[r] = E[tokens[r]] for the step's rows, in f32 from the table's
 * dtype. A table split by rows over several buffers takes one dispatch per part, each writing the rows whose
 * token falls inside it.
 */

import { DTYPE_CODE } from "../../model/dtype.ts";
import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { GpuMatrix } from "../../gpu/matrix.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

export interface EmbedIO {
  step: GPUBuffer;
  /** Token id per row. */
  tokens: GPUBuffer;
  /** f32 [rows, hidden]. */
  x: GPUBuffer;
}

export class Embedding implements StepOp {
  private readonly parts: Dispatch[];

  constructor(kernels: KernelCache, table: GpuMatrix, io: EmbedIO) {
    if (table.storage !== "buffer" || table.quant) {
      throw new Error(`embedding ${table.name}: the gather reads an unquantized table in buffers`);
    }
    this.parts = table.parts.map((part) =>
      bindKernel(kernels, "embed", { W_DTYPE: DTYPE_CODE[table.dtype] }, [
        uniformBuffer(kernels.gpu.device, "embed", [
          ["u32", table.cols],
          ["u32", part.firstRow],
          ["u32", part.rows],
          ["u32", table.rowStride],
        ]),
        io.step,
        io.tokens,
        part.buffer!,
        io.x,
      ])
    );
  }

  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows <= 0) return;
    for (const part of this.parts) record(pass, part, nRows);
  }
}
