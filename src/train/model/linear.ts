/**
 * A linear layer of the training graph over a parameter: y (+)= x · Wᵀ forward; backward dx (+)= dy · W and,
 * when the parameter trains, dW += dyᵀ · x. A frozen weight (FlexiDepth's base) passes gradients through to
 * its input and gets none itself; it may be held in its checkpoint's F16 / BF16 (`w.dtype`), which both of its
 * matmuls read.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { TrainMatmul } from "../../ops/matmul/train.ts";
import type { Param } from "../params.ts";

export interface LinearTrainIO {
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  /** Input gradient (null: the input needs none). */
  dx: GPUBuffer | null;
}

export interface LinearTrainOptions {
  /** y += x · Wᵀ. */
  accumulateY?: boolean;
  /** dx += dy · W (several projections of one input). */
  accumulateDx?: boolean;
  /** The weight's gradient, when not the parameter's own (an LM head tied to the embedding). */
  dw?: GPUBuffer | null;
}

export class LinearTrain {
  private readonly fwd: TrainMatmul;
  private readonly dxOp: TrainMatmul | null;
  private readonly dwOp: TrainMatmul | null;

  /** `rows`: the batch's rows N; W is `w.shape` = [out, in]. */
  constructor(kernels: KernelCache, w: Param, io: LinearTrainIO, rows: number, o: LinearTrainOptions = {}) {
    const [M, K] = w.shape;
    const shape = { N: rows, K, M };
    const t = w.dtype;
    this.fwd = new TrainMatmul(kernels, "nt", { a: io.x, b: w.value, c: io.y }, shape, !!o.accumulateY, t);
    this.dxOp = io.dx
      ? new TrainMatmul(kernels, "nn", { a: io.dy, b: w.value, c: io.dx }, shape, !!o.accumulateDx, t)
      : null;
    const dw = o.dw === undefined ? w.grad : o.dw;
    this.dwOp = dw ? new TrainMatmul(kernels, "tn", { a: io.dy, b: io.x, c: dw }, shape, true) : null;
  }

  forward(pass: ComputeRecorder): void {
    this.fwd.encode(pass);
  }

  backward(pass: ComputeRecorder): void {
    this.dxOp?.encode(pass);
    this.dwOp?.encode(pass);
  }
}
