/**
 * Rows scaled by a per-row factor (kernels/row_scale.wgsl, row_scale_grad.wgsl): y (+)= f(s[r]) · x with
 * f(s) = s or 1 − s — FlexiDepth's MLP output times the router's g and the adapter's times 1 − g — and the
 * row mask (DMTD's m_p: s a 0/1 mask, no gradient to it).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";
import { ELEMENTWISE_WG } from "./swiglu.ts";

export interface RowScaleIO {
  /** f32 [rows]: the factor (or 0/1 mask) per row. */
  s: GPUBuffer;
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
  /** f32 [rows]: the factor's gradient (omit for a mask). */
  ds?: GPUBuffer;
}

export interface RowScaleOptions {
  /** Scale by 1 − s rather than s. */
  complement?: boolean;
  /** y += f(s) · x (else y =). */
  accumulateY?: boolean;
  /** dx += f(s) · dy (else dx =). */
  accumulateDx?: boolean;
  /** ds += ± Σ dy · x (else ds =): g's two paths (MLP and adapter) add up. */
  accumulateDs?: boolean;
}

export class RowScale {
  private readonly fwd: Dispatch;
  private readonly dxOp: Dispatch;
  private readonly dsOp: Dispatch | null;
  private readonly groups: number;

  constructor(
    kernels: KernelCache,
    io: RowScaleIO,
    readonly rows: number,
    readonly width: number,
    opts: RowScaleOptions = {},
  ) {
    const n = rows * width;
    const op = `row scale ${rows}×${width}`;
    for (const k of ["x", "y", "dy", "dx"] as const) needFloats(op, k, io[k], n);
    needFloats(op, "s", io.s, rows);
    if (io.ds) needFloats(op, "ds", io.ds, rows);
    const device = kernels.gpu.device;
    const mode = opts.complement ? 2 : 0;
    const p = (accumulate?: boolean) =>
      paramsBuffer(device, "row_scale", [["u32", rows], ["u32", width], [
        "u32",
        mode | (accumulate ? 1 : 0),
      ]]);
    const WG = ELEMENTWISE_WG;
    this.fwd = bindKernel(kernels, "row_scale", { WG }, [p(opts.accumulateY), io.s, io.x, io.y]);
    this.dxOp = bindKernel(kernels, "row_scale", { WG }, [p(opts.accumulateDx), io.s, io.dy, io.dx]);
    this.dsOp = io.ds
      ? bindKernel(kernels, "row_scale_grad", { WG }, [p(opts.accumulateDs), io.x, io.dy, io.ds])
      : null;
    this.groups = Math.ceil(n / WG);
  }

  forward(pass: ComputeRecorder): void {
    recordFlat(pass, this.fwd, this.groups);
  }

  /** dx from dy, then (unless a mask) ds: one workgroup per row. */
  backward(pass: ComputeRecorder): void {
    recordFlat(pass, this.dxOp, this.groups);
    if (this.dsOp) recordFlat(pass, this.dsOp, this.rows);
  }
}

/** A 0/1 row mask (DMTD's m_p, f32 per row): y (+)= m · x, dx (+)= m · dy; the mask gets no gradient. */
export class RowMask extends RowScale {
  constructor(
    kernels: KernelCache,
    io: Omit<RowScaleIO, "s" | "ds"> & { mask: GPUBuffer },
    rows: number,
    width: number,
    opts: Pick<RowScaleOptions, "accumulateY" | "accumulateDx"> = {},
  ) {
    super(kernels, { ...io, s: io.mask }, rows, width, opts);
  }
}
