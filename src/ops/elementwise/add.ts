/**
 * y (+)= x elementwise (kernels/add.wgsl): the residual add, and its backward — a residual passes its gradient
 * through unchanged, so the same op adds dy into (or copies it to) the gradient of the residual's input.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";
import { ELEMENTWISE_WG } from "./swiglu.ts";

export class AddInto {
  private readonly dispatch: Dispatch;
  private readonly groups: number;

  /** y += x over `n` floats (`accumulate`), or y = x. */
  constructor(kernels: KernelCache, io: { x: GPUBuffer; y: GPUBuffer }, n: number, accumulate = true) {
    needFloats(`add ${n}`, "x", io.x, n);
    needFloats(`add ${n}`, "y", io.y, n);
    const params = paramsBuffer(kernels.gpu.device, "add", [["u32", n], ["u32", accumulate ? 1 : 0]]);
    this.dispatch = bindKernel(kernels, "add", { WG: ELEMENTWISE_WG }, [params, io.x, io.y]);
    this.groups = Math.ceil(n / ELEMENTWISE_WG);
  }

  encode(pass: ComputeRecorder): void {
    recordFlat(pass, this.dispatch, this.groups);
  }
}
