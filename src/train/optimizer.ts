/**
 * One optimizer step over a store's trainable parameters, all on the GPU: the global gradient norm and its clip
 * factor, AdamW (decoupled weight decay, bias correction, the moments the store holds), then the gradients
 * zeroed for the next step's micro-batches. Bound once; `encode` allocates nothing.
 */

import type { KernelCache } from "../gpu/kernels.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import { AdamW, type AdamWConfig } from "../ops/optim/adamw.ts";
import { GradNorm } from "../ops/optim/grad_norm.ts";
import { ZeroFloats } from "../ops/optim/zero.ts";
import type { ParamStore } from "./params.ts";

export interface OptimizerOptions extends AdamWConfig {
  /** Clip the global gradient norm to this (≤ 0: no clipping). */
  clip: number;
}

export class Optimizer {
  private readonly norm: GradNorm;
  private readonly adam: AdamW;
  private readonly zero: ZeroFloats;

  constructor(kernels: KernelCache, store: ParamStore, o: OptimizerOptions) {
    const params = store.trainable();
    const grads = params.map((p) => ({ buffer: p.grad!, n: p.size }));
    this.norm = new GradNorm(kernels, grads, o.clip);
    this.adam = new AdamW(
      kernels,
      params.map((p) => ({ param: p.value, grad: p.grad!, m: p.m!, v: p.v!, n: p.size, decay: p.decay })),
      o,
      this.norm.norm,
    );
    this.zero = new ZeroFloats(kernels, grads);
  }

  /** f32 [2]: {‖g‖₂ before clipping, the clip factor} after `encode`. */
  get gradNorm(): GPUBuffer {
    return this.norm.norm;
  }

  /** Gradients to zero (before a run's first micro-batch; `encode` leaves them zero after each step). */
  encodeZero(pass: ComputeRecorder): void {
    this.zero.encode(pass);
  }

  /** Step `t` (1 for the first) at learning rate `lr`: write its values, then record it. */
  setStep(queue: GPUQueue, t: number, lr: number): void {
    this.adam.setStep(queue, t, lr);
  }

  encode(pass: ComputeRecorder): void {
    this.norm.encode(pass);
    this.adam.encode(pass);
    this.zero.encode(pass);
  }
}
