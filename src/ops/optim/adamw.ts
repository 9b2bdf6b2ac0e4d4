/**
 * AdamW (kernels/adamw.wgsl) over a model's parameters: decoupled weight decay, bias correction, moments m
 * and v per parameter (allocated here, zero), gradients scaled by the clip factor that GradNorm leaves on the
 * GPU. The step's learning rate and bias corrections go into a small buffer per step (`setStep`); `encode`
 * allocates nothing.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bufferFrom, storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";

export interface AdamWParam {
  /** f32 [n], updated in place. */
  param: GPUBuffer;
  /** f32 [n]. */
  grad: GPUBuffer;
  n: number;
  /** Weight decay applies (false for norm weights and biases, by the usual practice). */
  decay: boolean;
  /** The moments' buffers (f32 [n] each, zero at the start) when the caller keeps them; else made here. */
  m?: GPUBuffer;
  v?: GPUBuffer;
}

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

const WG = 64;

export class AdamW {
  /** First and second moments per parameter, in the order given (a checkpoint saves them). */
  readonly moments: { m: GPUBuffer; v: GPUBuffer }[];
  private readonly hyper: GPUBuffer;
  private readonly hyperData = new Float32Array(8);
  private readonly steps: { dispatch: Dispatch; groups: number }[];

  /** `norm`: GradNorm's {‖g‖, clip} buffer; none: gradients are not clipped. */
  constructor(
    kernels: KernelCache,
    params: AdamWParam[],
    readonly config: AdamWConfig = ADAMW_DEFAULTS,
    norm?: GPUBuffer,
  ) {
    const device = kernels.gpu.device;
    this.hyper = storageBuffer(device, "adamw hyper", this.hyperData.byteLength);
    const clip = norm ?? bufferFrom(device, "no clipping", new Float32Array([0, 1]));
    this.moments = params.map((p, i) => {
      needFloats("adamw", `parameter ${i}`, p.param, p.n);
      needFloats("adamw", `gradient ${i}`, p.grad, p.n);
      const m = p.m ?? storageBuffer(device, `adamw m ${i}`, p.n * 4);
      const v = p.v ?? storageBuffer(device, `adamw v ${i}`, p.n * 4);
      needFloats("adamw", `m ${i}`, m, p.n);
      needFloats("adamw", `v ${i}`, v, p.n);
      return { m, v };
    });
    this.steps = params.map((p, i) => ({
      groups: Math.ceil(p.n / WG),
      dispatch: bindKernel(kernels, "adamw", { WG }, [
        paramsBuffer(device, "adamw", [["u32", p.n], ["u32", p.decay ? 1 : 0]]),
        this.hyper,
        clip,
        p.grad,
        p.param,
        this.moments[i].m,
        this.moments[i].v,
      ]),
    }));
  }

  /** The values of optimizer step `t` (1 for the first) at learning rate `lr`, for the next `encode`. */
  setStep(queue: GPUQueue, t: number, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.hyperData.set([lr, beta1, beta2, eps, weightDecay, 1 - beta1 ** t, 1 - beta2 ** t, 0]);
    queue.writeBuffer(this.hyper, 0, this.hyperData);
  }

  /** One dispatch per parameter. */
  encode(pass: ComputeRecorder): void {
    for (const s of this.steps) recordFlat(pass, s.dispatch, s.groups);
  }
}
