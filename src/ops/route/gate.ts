/**
 * The FlexiDepth gate of one routed layer (kernels/route_gate.wgsl): g = sigmoid((W_head · W_dec) ·
 * tanh(RMSNorm_r(e))) per row from the row's bottleneck e = W_enc · z (computed by a matmul before it), the
 * layer's route bit per row, and the rows split into a kept list (full layer, MLP × g) and a skipped list
 * (adapter × (1 − g)) with their counts, which the branches' kernels read: the host never waits on a route.
 */

import { type DType, DTYPE_CODE } from "../../model/dtype.ts";
import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

/** One branch's rows, written by the gate: a Step {n_rows} uniform, the row indices and their g. */
export interface BranchRows {
  step: GPUBuffer;
  idx: GPUBuffer;
  g: GPUBuffer;
}

export interface RouteGateShape {
  /** Which routed layer this is (0 = the first: it clears the route words). */
  nth: number;
  /** Route words per row. */
  routeWords: number;
  bottleneck: number;
  eps: number;
  /** g is rounded to this dtype, as the released model computes it. */
  dtype: DType;
  /** Invocations of the gate's workgroup (the backend profile's `gateWorkgroup`). */
  workgroup: number;
}

export interface RouteGateIO {
  step: GPUBuffer;
  /** e of row r at e.buffer[r · stride + offset ..]: a buffer of its own or columns of [k | v | e]. */
  e: { buffer: GPUBuffer; stride: number; offset: number };
  /** Route words per row: bit k = the k-th routed layer ran. */
  routes: GPUBuffer;
  kept: BranchRows;
  skipped: BranchRows;
  /** W_head · W_dec, f32 [bottleneck]. */
  decHead: GPUBuffer;
  /** router_norm weights, f32 [bottleneck]. */
  norm: GPUBuffer;
}

export class RouteGate {
  private readonly params: GPUBuffer;
  private readonly routed: Dispatch;
  /** g = 1 for every row: the base model. */
  private readonly fullDepth: Dispatch;

  constructor(private readonly kernels: KernelCache, shape: RouteGateShape, io: RouteGateIO) {
    this.params = uniformBuffer(kernels.gpu.device, "route_gate", [
      ["f32", 0.5],
      ["u32", shape.nth >> 5],
      ["u32", shape.nth & 31],
      ["u32", shape.routeWords],
      ["u32", shape.bottleneck],
      ["f32", shape.eps],
      ["u32", io.e.stride],
      ["u32", io.e.offset],
    ]);
    const buffers = [
      this.params,
      io.step,
      io.e.buffer,
      io.routes,
      io.kept.step,
      io.skipped.step,
      io.kept.idx,
      io.skipped.idx,
      io.kept.g,
      io.skipped.g,
      io.decHead,
      io.norm,
    ];
    const gate = (fullDepth: boolean) =>
      bindKernel(kernels, "route_gate", {
        WG: shape.workgroup,
        W_DTYPE: DTYPE_CODE[shape.dtype],
        FULL_DEPTH: fullDepth ? 1 : 0,
        FIRST_ROUTED: shape.nth === 0 ? 1 : 0,
      }, buffers);
    this.routed = gate(false);
    this.fullDepth = gate(true);
  }

  /** One workgroup walks the step's rows in order (deterministic lists). */
  encode(pass: ComputeRecorder, fullDepth: boolean): void {
    record(pass, fullDepth ? this.fullDepth : this.routed, 1);
  }

  /** Run a row's layer when g > threshold (queue-ordered with the steps around it). */
  setThreshold(threshold: number): void {
    this.kernels.gpu.device.queue.writeBuffer(this.params, 0, new Float32Array([threshold]));
  }
}
