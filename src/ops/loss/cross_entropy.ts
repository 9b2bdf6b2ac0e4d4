/**
 * Cross-entropy fused with softmax (kernels/cross_entropy.wgsl) and the batch's mean loss (loss_mean.wgsl):
 * per row of logits [rows, vocab] the loss against its target, and dlogits = (softmax − onehot) · scale
 * written over the logits; rows whose target is IGNORE_TARGET do not count. The scale (1 / counted rows by
 * default, or any weight) lives in a small buffer written per step.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bufferFrom } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record } from "../op.ts";
import { needFloats, paramsBuffer, recordFlat } from "../train_op.ts";
import { IGNORE_TARGET } from "./reference.ts";

export interface CrossEntropyIO {
  /** f32 [rows, vocab]: read, then overwritten by dlogits. */
  logits: GPUBuffer;
  /** u32 [rows]: written by `setTargets`. */
  targets: GPUBuffer;
  /** f32 [rows]: each row's loss (0 where it does not count), overwritten. */
  losses: GPUBuffer;
  /** f32 [3]: {mean over counted rows, sum, counted rows}, overwritten. */
  mean: GPUBuffer;
}

export interface CrossEntropyShape {
  rows: number;
  vocab: number;
  /** Threads per row workgroup, a power of two (the profile's normWorkgroup suits it). */
  workgroup: number;
}

/** Threads of the mean's one workgroup. */
const MEAN_WG = 64;

export class CrossEntropy {
  private readonly rowOp: Dispatch;
  private readonly meanOp: Dispatch;
  private readonly scale: GPUBuffer;
  private readonly scaleWord = new Float32Array(1);

  constructor(kernels: KernelCache, readonly io: CrossEntropyIO, readonly shape: CrossEntropyShape) {
    const { rows, vocab, workgroup } = shape;
    const op = `cross-entropy ${rows}×${vocab}`;
    needFloats(op, "logits", io.logits, rows * vocab);
    needFloats(op, "targets", io.targets, rows);
    needFloats(op, "losses", io.losses, rows);
    needFloats(op, "mean", io.mean, 3);
    // llvmpipe ends a kernel's loops after 65535 iterations in all: three passes over the row and two trees.
    if (3 * Math.ceil(vocab / workgroup) + 2 * Math.log2(workgroup) > 65535) {
      throw new Error(`${op}: a workgroup of ${workgroup} is too small for the vocabulary`);
    }
    const device = kernels.gpu.device;
    this.scale = bufferFrom(device, "cross-entropy scale", new Float32Array([1]));
    const params = paramsBuffer(device, "cross_entropy", [["u32", rows], ["u32", vocab], [
      "u32",
      IGNORE_TARGET,
    ]]);
    this.rowOp = bindKernel(kernels, "cross_entropy", { WG: workgroup }, [
      params,
      io.targets,
      this.scale,
      io.logits,
      io.losses,
    ]);
    this.meanOp = bindKernel(kernels, "loss_mean", { WG: MEAN_WG }, [params, io.targets, io.losses, io.mean]);
  }

  /** The gradient's scale for the next steps (a weight per step). */
  setScale(queue: GPUQueue, scale: number): void {
    this.scaleWord[0] = scale;
    queue.writeBuffer(this.scale, 0, this.scaleWord);
  }

  /**
   * A batch's targets (IGNORE_TARGET for rows that do not count): writes them and, unless `scale` is given,
   * the scale 1 / counted rows (the mean loss's gradient). Returns the counted rows.
   */
  setTargets(queue: GPUQueue, targets: Uint32Array, scale?: number): number {
    const { rows, vocab } = this.shape;
    if (targets.length !== rows) throw new Error(`cross-entropy: ${targets.length} targets for ${rows} rows`);
    let counted = 0;
    for (const t of targets) {
      if (t === IGNORE_TARGET) continue;
      if (t >= vocab) throw new Error(`cross-entropy: target ${t} is past the vocabulary (${vocab})`);
      counted++;
    }
    queue.writeBuffer(this.io.targets, 0, targets as Uint32Array<ArrayBuffer>);
    this.setScale(queue, scale ?? (counted ? 1 / counted : 0));
    return counted;
  }

  /** Losses and dlogits (one workgroup per row), then the mean (one workgroup). */
  encode(pass: ComputeRecorder): void {
    recordFlat(pass, this.rowOp, this.shape.rows);
    record(pass, this.meanOp, 1);
  }
}
