/**
 * The decoding layers' input of a DMTD step (kernels/add_rows.wgsl): x[i] = x[src + i] + e[src + i] for
 * i < count, the thinking output plus the embedding, with src and count written per step (`mixData`).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

const WG = 64;

export class AddRows implements StepOp {
  private readonly dispatch: Dispatch;

  /** `mix`: {src, count} (16 bytes), written per step. */
  constructor(
    kernels: KernelCache,
    private readonly width: number,
    mix: GPUBuffer,
    x: GPUBuffer,
    e: GPUBuffer,
  ) {
    this.dispatch = bindKernel(kernels, "add_rows", {}, [
      uniformBuffer(kernels.gpu.device, "add_rows", [["u32", width]]),
      mix,
      x,
      e,
    ]);
  }

  /** `count`: the rows the mix names (the kernel reads the same count from the buffer). */
  encode(pass: ComputeRecorder, count: number): void {
    if (count > 0) record(pass, this.dispatch, Math.ceil(this.width / WG), count);
  }
}

/** The 16 bytes of a step's mix: rows src .. src + count of x + e land in rows 0 .. count. */
export function mixData(src: number, count: number): Uint32Array<ArrayBuffer> {
  return new Uint32Array([src, count, 0, 0]);
}
