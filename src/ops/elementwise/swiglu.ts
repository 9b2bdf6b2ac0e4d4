/**
 * Training SwiGLU (kernels/swiglu_train.wgsl, swiglu_backward.wgsl): act = silu(gate) · up elementwise over
 * [N, I], gate and up in separate buffers; the backward overwrites dgate and dup.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";

/** Threads per workgroup of the elementwise kernels. */
export const ELEMENTWISE_WG = 64;

export interface SwigluIO {
  gate: GPUBuffer;
  up: GPUBuffer;
  act: GPUBuffer;
  dact: GPUBuffer;
  dgate: GPUBuffer;
  dup: GPUBuffer;
}

export class SwigluTrain {
  private readonly fwd: Dispatch;
  private readonly bwd: Dispatch;
  private readonly groups: number;

  /** `n`: elements (N · I). */
  constructor(kernels: KernelCache, io: SwigluIO, n: number) {
    for (const k of Object.keys(io) as (keyof SwigluIO)[]) needFloats(`swiglu ${n}`, k, io[k], n);
    const params = paramsBuffer(kernels.gpu.device, "swiglu", [["u32", n]]);
    const WG = ELEMENTWISE_WG;
    this.fwd = bindKernel(kernels, "swiglu_train", { WG }, [params, io.gate, io.up, io.act]);
    this.bwd = bindKernel(kernels, "swiglu_backward", { WG }, [
      params,
      io.gate,
      io.up,
      io.dact,
      io.dgate,
      io.dup,
    ]);
    this.groups = Math.ceil(n / WG);
  }

  forward(pass: ComputeRecorder): void {
    recordFlat(pass, this.fwd, this.groups);
  }

  backward(pass: ComputeRecorder): void {
    recordFlat(pass, this.bwd, this.groups);
  }
}
