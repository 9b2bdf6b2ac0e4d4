/**
 * Moving rows between a step's activations and a dense block (kernels/gather.wgsl, scatter.wgsl): a FlexiDepth
 * branch gathers the rows the gate gave it, runs on them, and scatters them back. The row count and indices
 * come from the GPU (the gate's lists), so the host never waits for them.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { BranchRows } from "../route/gate.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

/** Invocations per workgroup of both kernels. */
const WG = 64;

/** dst[i] = src[rows.idx[i]] (gather) or dst[rows.idx[i]] = src[i] (scatter), rows of `width` 32-bit words. */
export class RowMove implements StepOp {
  private readonly dispatch: Dispatch;

  constructor(
    kernels: KernelCache,
    kind: "gather" | "scatter",
    rows: BranchRows,
    src: GPUBuffer,
    dst: GPUBuffer,
    private readonly width: number,
  ) {
    this.dispatch = bindKernel(kernels, kind, {}, [
      uniformBuffer(kernels.gpu.device, kind, [["u32", width]]),
      rows.step,
      rows.idx,
      src,
      dst,
    ]);
  }

  /** `nRows`: the most rows the branch can have (the step's); the kernel reads the branch's own count. */
  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows > 0) record(pass, this.dispatch, Math.ceil(this.width / WG), nRows);
  }
}
