/**
 * The tokens a DMTD sequence generated, kept on the GPU by position (kernels/token_history.wgsl): recorded
 * after each sampling, gathered into the step's tokens before a refill block, so that a head step's thinking
 * layers run on real tokens the host has not read back yet and no step waits for the host.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

const WG = 64;

export interface TokenHistoryIO {
  /** The step whose outputs are recorded (n_out, rows, out_rows). */
  step: GPUBuffer;
  rows: GPUBuffer;
  outRows: GPUBuffer;
  /** The refill block's step and rows (n_rows, rows) whose tokens are gathered. */
  blockStep: GPUBuffer;
  blockRows: GPUBuffer;
  /** The step's token per row; the sampler writes the next tokens here. */
  tokens: GPUBuffer;
}

export class TokenHistory {
  /** u32 [slots, context]: the token fed at each position. */
  readonly history: GPUBuffer;
  private readonly recordTokens: Dispatch;
  private readonly gatherTokens: Dispatch;

  constructor(kernels: KernelCache, slots: number, context: number, io: TokenHistoryIO) {
    const device = kernels.gpu.device;
    this.history = storageBuffer(device, "token_history", slots * context * 4);
    const params = uniformBuffer(device, "token_history", [["u32", context]]);
    const bind = (record: boolean, step: GPUBuffer, rows: GPUBuffer) =>
      bindKernel(kernels, "token_history", { RECORD: record ? 1 : 0 }, [
        params,
        step,
        rows,
        io.outRows,
        io.tokens,
        this.history,
      ]);
    this.recordTokens = bind(true, io.step, io.rows);
    this.gatherTokens = bind(false, io.blockStep, io.blockRows);
  }

  /** After sampling: each output's token at the position after its row's. */
  record(pass: ComputeRecorder, nOut: number): void {
    if (nOut > 0) record(pass, this.recordTokens, Math.ceil(nOut / WG));
  }

  /** Before a refill block: its rows' tokens from the history. */
  gather(pass: ComputeRecorder, blockRows: number): void {
    if (blockRows > 0) record(pass, this.gatherTokens, Math.ceil(blockRows / WG));
  }
}
