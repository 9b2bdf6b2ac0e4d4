/**
 * Elementwise tanh and sigmoid (kernels/unary.wgsl, unary_backward.wgsl): the router's nonlinearities. The
 * backward reads the forward's output y (both derivatives are functions of it).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";
import { ELEMENTWISE_WG } from "./swiglu.ts";

export type UnaryFn = "tanh" | "sigmoid";

const CODE: Record<UnaryFn, number> = { tanh: 0, sigmoid: 1 };

export interface UnaryIO {
  x: GPUBuffer;
  /** Written by the forward, read by the backward. */
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
}

export class Unary {
  private readonly fwd: Dispatch;
  private readonly bwd: Dispatch;
  private readonly groups: number;

  /** `n` floats; `accumulateDx`: dx += the gradient (else dx =). */
  constructor(kernels: KernelCache, readonly fn: UnaryFn, io: UnaryIO, n: number, accumulateDx = false) {
    for (const k of Object.keys(io) as (keyof UnaryIO)[]) needFloats(`${fn} ${n}`, k, io[k], n);
    const device = kernels.gpu.device;
    const WG = ELEMENTWISE_WG;
    const fwd = paramsBuffer(device, fn, [["u32", n], ["u32", CODE[fn]]]);
    const bwd = paramsBuffer(device, fn, [["u32", n], ["u32", CODE[fn] | (accumulateDx ? 4 : 0)]]);
    this.fwd = bindKernel(kernels, "unary", { WG }, [fwd, io.x, io.y]);
    this.bwd = bindKernel(kernels, "unary_backward", { WG }, [bwd, io.y, io.dy, io.dx]);
    this.groups = Math.ceil(n / WG);
  }

  forward(pass: ComputeRecorder): void {
    recordFlat(pass, this.fwd, this.groups);
  }

  backward(pass: ComputeRecorder): void {
    recordFlat(pass, this.bwd, this.groups);
  }
}
