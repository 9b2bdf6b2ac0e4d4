/** Zeroes gradient buffers before a step's first micro-batch (kernels/zero.wgsl), one dispatch per buffer. */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";
import type { FloatRange } from "./grad_norm.ts";

const WG = 64;

export class ZeroFloats {
  private readonly ops: { dispatch: Dispatch; groups: number }[];

  constructor(kernels: KernelCache, ranges: FloatRange[]) {
    const device = kernels.gpu.device;
    this.ops = ranges.map((r, i) => {
      needFloats("zero", `buffer ${i}`, r.buffer, r.n);
      return {
        groups: Math.ceil(r.n / WG),
        dispatch: bindKernel(kernels, "zero", { WG }, [
          paramsBuffer(device, "zero", [["u32", r.n]]),
          r.buffer,
        ]),
      };
    });
  }

  encode(pass: ComputeRecorder): void {
    for (const o of this.ops) recordFlat(pass, o.dispatch, o.groups);
  }
}
