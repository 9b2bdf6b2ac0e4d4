/**
 * What a step reports, read back once per step: each micro-batch's LM loss {mean, sum, counted} and L_skip,
 * the gradient norm, and the last micro-batch's gates (the routing of every routed layer). The copies are
 * recorded into the step's command buffers; one map at the end reads them all. Allocated once.
 */

import type { StepOutputs } from "./model/model.ts";

const MICRO_BYTES = 32;

export interface StepReading {
  /** Mean LM loss over the micro-batches (each its own mean over counted targets). */
  lmLoss: number;
  /** Mean L_skip over the micro-batches (null: no routed layers). */
  skipLoss: number | null;
  gradNorm: number;
  /** Per routed layer, the fraction of the last micro-batch's rows that ran it. */
  routedFraction: number[] | null;
}

export class StepStats {
  private readonly staging: GPUBuffer;
  private readonly normAt: number;
  private readonly gatesAt: number;
  private readonly gatesBytes: number;

  constructor(
    private readonly device: GPUDevice,
    private readonly outputs: StepOutputs,
    private readonly micro: number,
    private readonly routed: number,
    private readonly rows: number,
    private readonly threshold = 0.5,
  ) {
    this.normAt = micro * MICRO_BYTES;
    this.gatesAt = this.normAt + 16;
    this.gatesBytes = outputs.gates ? routed * rows * 4 : 0;
    this.staging = device.createBuffer({
      label: "step stats",
      size: this.gatesAt + this.gatesBytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** After micro-batch `i`'s pass: its losses (and, for the last, its gates). */
  copyMicro(enc: GPUCommandEncoder, i: number): void {
    const o = this.outputs;
    enc.copyBufferToBuffer(o.lmLoss, 0, this.staging, i * MICRO_BYTES, 16);
    if (o.skipLoss) enc.copyBufferToBuffer(o.skipLoss, 0, this.staging, i * MICRO_BYTES + 16, 16);
    if (o.gates && i === this.micro - 1) {
      enc.copyBufferToBuffer(o.gates, 0, this.staging, this.gatesAt, this.gatesBytes);
    }
  }

  /** After the optimizer's pass: the gradient norm {‖g‖, clip}. */
  copyNorm(enc: GPUCommandEncoder, norm: GPUBuffer): void {
    enc.copyBufferToBuffer(norm, 0, this.staging, this.normAt, 8);
  }

  async read(): Promise<StepReading> {
    await this.staging.mapAsync(GPUMapMode.READ);
    const f = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    let lm = 0, skip = 0;
    for (let i = 0; i < this.micro; i++) {
      lm += f[i * MICRO_BYTES / 4];
      skip += f[i * MICRO_BYTES / 4 + 4];
    }
    return {
      lmLoss: lm / this.micro,
      skipLoss: this.outputs.skipLoss ? skip / this.micro : null,
      gradNorm: f[this.normAt / 4],
      routedFraction: this.outputs.gates ? this.fractions(f) : null,
    };
  }

  private fractions(f: Float32Array): number[] {
    const out: number[] = [];
    for (let l = 0; l < this.routed; l++) {
      let kept = 0;
      const at = this.gatesAt / 4 + l * this.rows;
      for (let r = 0; r < this.rows; r++) if (f[at + r] > this.threshold) kept++;
      out.push(kept / this.rows);
    }
    return out;
  }

  destroy(): void {
    this.staging.destroy();
  }
}
