/**
 * FlexiDepth's gate in training, one routed layer (kernels/route_gate_train.wgsl, route_gate_backward.wgsl):
 * g = sigmoid(logit) into the layer's row of the gates [layers, rows] that the skip loss reads, the hard route
 * m = g > threshold and the branch scales sm = m·g (MLP) and sa = (1 − m)(1 − g) (adapter); the backward turns
 * the skip loss's dg and the scales' gradients into dlogit. Bound once; `encode` allocates nothing.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

const WG = 64;

export interface RouteGateTrainIO {
  /** [rows]: the router head's output. */
  logit: GPUBuffer;
  /** [layers, rows]: this layer's row written; and their gradients (the skip loss's share, read). */
  gates: GPUBuffer;
  dgates: GPUBuffer;
  /** [rows] each: the route and the two scales (written), and the scales' gradients (read). */
  m: GPUBuffer;
  sm: GPUBuffer;
  sa: GPUBuffer;
  dsm: GPUBuffer;
  dsa: GPUBuffer;
  /** [rows]: overwritten by the backward. */
  dlogit: GPUBuffer;
}

export class RouteGateTrain {
  private readonly params: GPUBuffer;
  private readonly fwd: Dispatch;
  private readonly bwd: Dispatch;
  private readonly groups: number;

  /** `layer`: this layer's index among the routed layers; `threshold`: 0.5 as released. */
  constructor(
    private readonly kernels: KernelCache,
    io: RouteGateTrainIO,
    rows: number,
    layer: number,
    threshold = 0.5,
  ) {
    this.params = uniformBuffer(kernels.gpu.device, `route_gate.${layer}`, [
      ["u32", rows],
      ["u32", layer * rows],
      ["f32", threshold],
      ["u32", 0],
    ]);
    this.fwd = bindKernel(kernels, "route_gate_train", { WG }, [
      this.params,
      io.logit,
      io.gates,
      io.m,
      io.sm,
      io.sa,
    ]);
    this.bwd = bindKernel(kernels, "route_gate_backward", { WG }, [
      this.params,
      io.gates,
      io.m,
      io.dsm,
      io.dsa,
      io.dgates,
      io.dlogit,
    ]);
    this.groups = Math.ceil(rows / WG);
  }

  forward(pass: ComputeRecorder): void {
    record(pass, this.fwd, this.groups);
  }

  backward(pass: ComputeRecorder): void {
    record(pass, this.bwd, this.groups);
  }

  setThreshold(threshold: number): void {
    this.kernels.gpu.device.queue.writeBuffer(this.params, 8, new Float32Array([threshold]));
  }
}
