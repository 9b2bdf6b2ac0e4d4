/**
 * The decoding layers' input of a DMTD step (kernels/mix_rows.wgsl): x[i] = a_i · x[src_i] + b_i · e[src_i]
 * for i < count, from the thinking output in x and the embedding e, the table written per step (`mixData`).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

const WG = 64;

/** One row of the mix: its source row and the weights of t and e (e + t: 1, 1; e alone: 0, 1; t alone: 1, 0). */
export interface MixRow {
  src: number;
  a: number;
  b: number;
}

/** Bytes of the mix table for `rows` rows (a 16-byte header, 16 bytes a row). */
export function mixBytes(rows: number): number {
  return 16 + 16 * rows;
}

export class MixRows implements StepOp {
  private readonly dispatch: Dispatch;

  /** `mix`: the table (`mixData`), written per step. */
  constructor(
    kernels: KernelCache,
    private readonly width: number,
    mix: GPUBuffer,
    x: GPUBuffer,
    e: GPUBuffer,
  ) {
    this.dispatch = bindKernel(kernels, "mix_rows", {}, [
      uniformBuffer(kernels.gpu.device, "mix_rows", [["u32", width]]),
      mix,
      x,
      e,
    ]);
  }

  /** `count`: the rows the table names (the kernel reads the same count from it). */
  encode(pass: ComputeRecorder, count: number): void {
    if (count > 0) record(pass, this.dispatch, Math.ceil(this.width / WG), count);
  }
}

/** The mix table of `rows` into `out` (mixBytes(rows.length) bytes); returns the bytes written. */
export function mixData(rows: MixRow[], out: DataView): number {
  out.setUint32(0, rows.length, true);
  rows.forEach((r, i) => {
    out.setUint32(16 + 16 * i, r.src, true);
    out.setFloat32(20 + 16 * i, r.a, true);
    out.setFloat32(24 + 16 * i, r.b, true);
  });
  return mixBytes(rows.length);
}
