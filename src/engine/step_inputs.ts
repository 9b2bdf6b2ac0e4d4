/**
 * A step's inputs, written to the GPU before it runs: counts, rows, host tokens (prefill; decode rows read
 * the ids the previous step sampled), the output rows and their RNG positions. Queue-ordered, so a step in
 * flight keeps the inputs it was submitted with; the host arrays are scratch allocated once.
 */

import type { DmtdState, ScoringState, StepBuffers } from "../graph/run_state.ts";
import { mixBytes, mixData, type MixRow } from "../ops/dmtd/mix_rows.ts";

/** One row of a step. */
export interface StepRow {
  slot: number;
  pos: number;
}

export class StepInputs {
  private readonly step = new Uint32Array(4);
  private readonly outStep = new Uint32Array(4);
  private readonly rows: Uint32Array<ArrayBuffer>;
  private readonly tokens: Uint32Array<ArrayBuffer>;
  private readonly outRows: Uint32Array<ArrayBuffer>;
  private readonly positions: Uint32Array<ArrayBuffer>;
  private readonly targets: Uint32Array<ArrayBuffer>;
  private readonly thinkStep = new Uint32Array(4);
  private readonly mix: DataView<ArrayBuffer>;

  constructor(
    private readonly queue: GPUQueue,
    private readonly buffers: StepBuffers,
    maxRows: number,
    maxOut: number,
  ) {
    this.rows = new Uint32Array(2 * maxRows);
    this.tokens = new Uint32Array(maxRows);
    this.outRows = new Uint32Array(maxOut);
    this.positions = new Uint32Array(maxOut);
    this.targets = new Uint32Array(maxOut);
    this.mix = new DataView(new ArrayBuffer(mixBytes(maxRows)));
  }

  /** A scoring step's target token per output row. */
  writeTargets(s: ScoringState, targets: ArrayLike<number>): void {
    this.targets.set(targets);
    this.queue.writeBuffer(s.targets, 0, this.targets, 0, targets.length);
  }

  write(rows: StepRow[], outRows: number[], tokens?: ArrayLike<number>): void {
    const q = this.queue, b = this.buffers;
    const n = rows.length, nOut = outRows.length;
    this.step.set([n, nOut]);
    q.writeBuffer(b.step, 0, this.step);
    this.outStep[0] = nOut;
    q.writeBuffer(b.outStep, 0, this.outStep);
    rows.forEach((r, i) => {
      this.rows[2 * i] = r.slot;
      this.rows[2 * i + 1] = r.pos;
    });
    q.writeBuffer(b.rows, 0, this.rows, 0, 2 * n);
    if (tokens) {
      this.tokens.set(tokens);
      q.writeBuffer(b.tokens, 0, this.tokens, 0, tokens.length);
    }
    if (nOut) {
      outRows.forEach((r, j) => {
        this.outRows[j] = r;
        this.positions[j] = rows[r].pos;
      });
      q.writeBuffer(b.outRows, 0, this.outRows, 0, nOut);
      q.writeBuffer(b.positions, 0, this.positions, 0, nOut);
    }
  }

  /** A DMTD step's thinking rows (their count and {slot, pos}) and its mix table (ops/dmtd/mix_rows.ts). */
  writeThinking(d: DmtdState, rows: StepRow[], mix: MixRow[]): void {
    const q = this.queue;
    this.thinkStep[0] = rows.length;
    q.writeBuffer(d.thinkStep, 0, this.thinkStep);
    rows.forEach((r, i) => {
      this.rows[2 * i] = r.slot;
      this.rows[2 * i + 1] = r.pos;
    });
    q.writeBuffer(d.thinkRows, 0, this.rows, 0, 2 * rows.length);
    q.writeBuffer(d.mix, 0, this.mix.buffer, 0, mixData(mix, this.mix));
  }
}
