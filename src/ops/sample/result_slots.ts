/**
 * The step's result slots after sampling (kernels/step_result.wgsl): per output row [token id (the sampler
 * wrote it), layers used, route words], layers = plain layers + kept routed layers. Routed models only: a
 * plain model's count is its depth.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

export interface ResultSlotsShape {
  /** Layers every token runs. */
  plainLayers: number;
  routeWords: number;
  /** Words per output's slot. */
  stride: number;
}

export interface ResultSlotsIO {
  step: GPUBuffer;
  outRows: GPUBuffer;
  routes: GPUBuffer;
  result: GPUBuffer;
}

export class ResultSlots implements StepOp {
  private readonly dispatch: Dispatch;

  constructor(kernels: KernelCache, shape: ResultSlotsShape, io: ResultSlotsIO) {
    this.dispatch = bindKernel(kernels, "step_result", {}, [
      uniformBuffer(kernels.gpu.device, "step_result", [
        ["u32", shape.plainLayers],
        ["u32", shape.routeWords],
        ["u32", shape.stride],
      ]),
      io.step,
      io.outRows,
      io.routes,
      io.result,
    ]);
  }

  /** One workgroup covers the step's outputs. */
  encode(pass: ComputeRecorder, nOut: number): void {
    if (nOut > 0) record(pass, this.dispatch, 1);
  }
}
