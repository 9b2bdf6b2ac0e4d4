/**
 * RoPE and the KV write as a kernel of their own (kernels/rope_kv.wgsl), for layers whose projections cannot
 * do it in their epilogue (head sizes that are not a multiple of 4; tests). Rotates q in place and/or rotates
 * k and writes k and v into the layer's cache at each row's (slot, pos).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

/** Steps of at most this many rows spread each row over the profile's `ropeSlices` workgroups (decode). */
const SLICED_MAX_ROWS = 8;

export interface RopeShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Positions per cache slot. */
  context: number;
  /** Workgroups per row at decode (the backend profile's `ropeSlices`). */
  slices: number;
}

/** Columns of q, k and v in the projection output's rows; a part left out is not touched. */
export interface RopeColumns {
  stride: number;
  q?: number;
  k?: number;
  v?: number;
}

export interface RopeIO {
  step: GPUBuffer;
  rows: GPUBuffer;
  /** [ctx, head_dim / 2] (cos, sin): `ropeTable`. */
  cosSin: GPUBuffer;
  /** The projection output holding q, k, v at `RopeColumns`. */
  qkv: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
}

export class RopeKv implements StepOp {
  private readonly dispatch: Dispatch;

  constructor(kernels: KernelCache, private readonly shape: RopeShape, at: RopeColumns, io: RopeIO) {
    const params = uniformBuffer(kernels.gpu.device, "rope_kv", [
      ["u32", shape.numHeads],
      ["u32", shape.numKvHeads],
      ["u32", shape.headDim],
      ["u32", shape.context],
      ["u32", at.stride],
      ["u32", at.q ?? 0],
      ["u32", at.k ?? 0],
      ["u32", at.v ?? 0],
      ["u32", (at.q === undefined ? 0 : 1) | (at.k === undefined ? 0 : 2)],
    ]);
    this.dispatch = bindKernel(kernels, "rope_kv", {}, [
      params,
      io.step,
      io.rows,
      io.cosSin,
      io.qkv,
      io.kCache,
      io.vCache,
    ]);
  }

  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows > 0) record(pass, this.dispatch, nRows, nRows <= SLICED_MAX_ROWS ? this.shape.slices : 1);
  }
}
