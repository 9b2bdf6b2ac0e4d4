/**
 * Scoring on the GPU (kernels/logprob.wgsl): per output row, the log-probability of a given target token and
 * whether it is the greedy choice, so a scoring step reads back two words per scored token, not its logits.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

export interface LogprobIO {
  /** The step uniform: n_out rows are scored. */
  step: GPUBuffer;
  /** f32 [rows, vocab]. */
  logits: GPUBuffer;
  /** u32 per output row. */
  targets: GPUBuffer;
  /** [rows] × (f32 log-probability bits, u32 greedy). */
  scores: GPUBuffer;
}

export class Logprob implements StepOp {
  private readonly dispatch: Dispatch;

  constructor(kernels: KernelCache, vocab: number, io: LogprobIO, workgroup: number) {
    this.dispatch = bindKernel(kernels, "logprob", { WG: workgroup }, [
      uniformBuffer(kernels.gpu.device, "logprob", [["u32", vocab]]),
      io.step,
      io.logits,
      io.targets,
      io.scores,
    ]);
  }

  /** One workgroup per scored row. */
  encode(pass: ComputeRecorder, nOut: number): void {
    if (nOut > 0) record(pass, this.dispatch, nOut);
  }
}
