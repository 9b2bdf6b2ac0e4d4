/**
 * One optimizer step on the GPU: `accumulate` micro-batches (each: tokens and targets written, forward, loss
 * and backward recorded and submitted, gradients added), then the optimizer recorded after the last, and the
 * step's figures read back once. The training loop and `deno task bench --train` both step through this.
 */

import type { Batch } from "./data/mod.ts";
import type { TrainModel } from "./model/model.ts";
import type { Optimizer } from "./optimizer.ts";
import { type StepReading, StepStats } from "./step_stats.ts";

export class StepRunner {
  readonly stats: StepStats;

  constructor(
    private readonly device: GPUDevice,
    private readonly model: TrainModel,
    private readonly optimizer: Optimizer,
    readonly accumulate: number,
  ) {
    const ctx = model.ctx;
    this.stats = new StepStats(device, model.outputs, accumulate, ctx.shape.routed.length, ctx.rows);
  }

  /** Optimizer step `t` (1 for the first) at learning rate `lr`, over the batches `next` gives. */
  async step(t: number, lr: number, next: () => Batch): Promise<StepReading> {
    const { device, model } = this;
    for (let i = 0; i < this.accumulate; i++) {
      const b = next();
      model.setBatch(device.queue, b.inputs, b.targets, 1 / this.accumulate);
      const last = i === this.accumulate - 1;
      if (last) this.optimizer.setStep(device.queue, t, lr);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      model.encodeStep(pass);
      if (last) this.optimizer.encode(pass);
      pass.end();
      this.stats.copyMicro(enc, i);
      if (last) this.stats.copyNorm(enc, this.optimizer.gradNorm);
      device.queue.submit([enc.finish()]);
    }
    return await this.stats.read();
  }

  destroy(): void {
    this.stats.destroy();
  }
}
