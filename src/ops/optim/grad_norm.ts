/**
 * The global gradient norm over every gradient buffer, on the GPU in two passes (kernels/sumsq_partial.wgsl
 * per buffer, then grad_norm.wgsl): `norm` holds {‖g‖₂, clip scale} afterwards, the scale
 * min(1, maxNorm / (‖g‖ + 1e-6)) that AdamW applies without a readback. Sums run in a fixed order.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record } from "../op.ts";
import { MAX_GROUPS_X, needFloats, paramsBuffer } from "../train_op.ts";

/** A gradient (or any f32) buffer and how many floats of it count. */
export interface FloatRange {
  buffer: GPUBuffer;
  n: number;
}

/** Threads per workgroup of both passes. */
const WG = 256;
/** Terms per thread the first pass aims at (more workgroups for larger buffers, ≤ 65535 of them). */
const TERMS_PER_THREAD = 64;

/** Workgroups of the first pass over n floats. */
export function partialGroups(n: number): number {
  const groups = Math.max(1, Math.min(MAX_GROUPS_X, Math.ceil(n / (WG * TERMS_PER_THREAD))));
  // llvmpipe ends loops after 65535 iterations: no thread may stride more often.
  if (Math.ceil(n / (groups * WG)) >= 65535) {
    throw new Error(`gradient norm: ${n} floats in one buffer is too many`);
  }
  return groups;
}

export class GradNorm {
  /** f32 [2]: {‖g‖₂, clip scale} after `encode`. */
  readonly norm: GPUBuffer;
  private readonly partials: { dispatch: Dispatch; groups: number }[];
  private readonly finish: Dispatch;

  /** `maxNorm` ≤ 0: no clipping (the scale stays 1). */
  constructor(kernels: KernelCache, grads: FloatRange[], maxNorm: number) {
    const device = kernels.gpu.device;
    let base = 0;
    const plan = grads.map((g, i) => {
      needFloats("gradient norm", `gradient ${i}`, g.buffer, g.n);
      const groups = partialGroups(g.n);
      const at = base;
      base += groups;
      return { g, groups, at };
    });
    const partials = storageBuffer(device, "gradient norm partials", Math.max(1, base) * 4);
    this.norm = storageBuffer(device, "gradient norm", 8);
    this.partials = plan.map(({ g, groups, at }) => ({
      groups,
      dispatch: bindKernel(kernels, "sumsq_partial", { WG }, [
        paramsBuffer(device, "sumsq_partial", [["u32", g.n], ["u32", at], ["u32", groups]]),
        g.buffer,
        partials,
      ]),
    }));
    this.finish = bindKernel(kernels, "grad_norm", { WG }, [
      paramsBuffer(device, "grad_norm", [["u32", base], ["f32", maxNorm]]),
      partials,
      this.norm,
    ]);
  }

  /** One dispatch per gradient buffer, then one to combine them. */
  encode(pass: ComputeRecorder): void {
    for (const p of this.partials) record(pass, p.dispatch, p.groups);
    record(pass, this.finish, 1);
  }
}
