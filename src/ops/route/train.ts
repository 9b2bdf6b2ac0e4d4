/**
 * FlexiDepth's skip loss in training (kernels/skip_loss.wgsl; the gate and hard route are ./gate_train.ts).
 * The gates of the routed layers live in one f32 buffer [layers, rows] (routed layer l's gates at l · rows,
 * rows = B·T), their gradients in another of the same shape. `SkipLoss`: L_skip = (1/N) Σ_t (Σ_l g_t^l)² into
 * one element of a loss buffer (overwritten), and dg_t^l += α · 2 s_t / N (accumulated), one dispatch of one
 * workgroup.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

/**
 * llvmpipe stops an invocation after 65535 loop passes in all, each run of a loop costing its iterations + 1
 * (kernels/README.md): a skip-loss invocation makes P = ceil(rows / WG) passes over its rows, each with two
 * loops over the layers, then log2(WG) steps of the tree: P · (2 · layers + 3) + log2(WG) + 2.
 */
const MAX_LOOP_PASSES = 65535;

export interface SkipLossShape {
  /** N = B·T rows of the batch. */
  rows: number;
  /** Routed layers. */
  layers: number;
  /** The loss weight α of dg (L = α·L_skip + L_lm); `setAlpha` changes it between steps. */
  alpha: number;
  /** Invocations of the one workgroup, a power of two (default 64). */
  workgroup?: number;
}

export interface SkipLossIO {
  /** Gates [layers, rows], read. */
  g: GPUBuffer;
  /** Their gradients [layers, rows]: α · 2 s_t / N is added. */
  dg: GPUBuffer;
  /** L_skip (without α) is written to element `lossAt` of this buffer. */
  loss: GPUBuffer;
  lossAt?: number;
}

export class SkipLoss {
  private readonly params: GPUBuffer;
  private readonly dispatch: Dispatch;

  constructor(private readonly kernels: KernelCache, shape: SkipLossShape, io: SkipLossIO) {
    const wg = shape.workgroup ?? 64;
    if (wg < 1 || (wg & (wg - 1)) !== 0) throw new Error(`skip loss workgroup ${wg} is not a power of two`);
    const passes = Math.ceil(shape.rows / wg) * (2 * shape.layers + 3) + Math.log2(wg) + 2;
    if (shape.rows < 1 || shape.layers < 1 || passes > MAX_LOOP_PASSES) {
      throw new Error(
        `skip loss over ${shape.rows} rows of ${shape.layers} routed layers: more than one invocation of a ` +
          `workgroup of ${wg} may loop (${passes} of ${MAX_LOOP_PASSES} passes); a larger workgroup`,
      );
    }
    this.params = uniformBuffer(kernels.gpu.device, "skip_loss", [
      ["u32", shape.rows],
      ["u32", shape.layers],
      ["f32", shape.alpha],
      ["u32", io.lossAt ?? 0],
    ]);
    this.dispatch = bindKernel(kernels, "skip_loss", { WG: wg }, [this.params, io.g, io.dg, io.loss]);
  }

  encode(pass: ComputeRecorder): void {
    record(pass, this.dispatch, 1);
  }

  /** α for the steps submitted after this (queue-ordered). */
  setAlpha(alpha: number): void {
    this.kernels.gpu.device.queue.writeBuffer(this.params, 8, new Float32Array([alpha]));
  }
}
