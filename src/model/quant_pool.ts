/**
 * Quantization at load on every core. `--quant` quantizes a model's projections on the host (quant.ts runs at
 * ~60–100 M weights/s on one core: ~1.5–2 minutes for Llama-3-8B's 7.5 billion); a pool of workers takes the
 * chunks the loader writes (`writeRows` in gpu/matrix.ts) and hands each back, quantized, to be written to the
 * GPU, while the loader reads on. Same code in every worker (quant_worker.ts), so the bytes are the inline ones.
 */

import type { DType } from "./dtype.ts";
import type { QuantFormat } from "./quant.ts";
import { CheckpointError } from "../errors.ts";

/** Checkpoint rows (rows × cols values of `dtype`, unpadded) to quantize to `format`. */
export interface RowChunk {
  format: QuantFormat;
  dtype: DType;
  raw: Uint8Array;
  rows: number;
  cols: number;
}

/** What writeRows asks of a quantizer: rows in, a callback with them quantized. */
export interface RowQuantizer {
  submit(chunk: RowChunk, done: (quantized: Uint8Array<ArrayBuffer>) => void): void;
}

/** A chunk as a worker receives it: its own copy of the rows, transferred. */
export interface QuantJob extends RowChunk {
  id: number;
  raw: Uint8Array<ArrayBuffer>;
}

export type QuantResult = { id: number; out: Uint8Array<ArrayBuffer> } | { id: number; error: string };

/** Workers by default: one per core, at most 16 (the loader's reads keep the main thread busy enough). */
function defaultPoolSize(): number {
  return Math.max(1, Math.min(16, navigator.hardwareConcurrency || 1));
}

export class QuantPool implements RowQuantizer {
  private readonly idle: Worker[] = [];
  private readonly queue: QuantJob[] = [];
  private readonly pending = new Map<number, (q: Uint8Array<ArrayBuffer>) => void>();
  private nextId = 0;
  private failure: string | null = null;
  private waiters: (() => void)[] = [];

  private constructor(private readonly workers: Worker[], readonly maxQueued: number) {
    for (const w of workers) {
      w.onmessage = (e: MessageEvent<QuantResult>) => this.finished(w, e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.fail(e.message);
      };
      this.idle.push(w);
    }
  }

  /** A pool of `size` workers, or null where workers cannot be started (then quantize inline). */
  static open(size = defaultPoolSize()): QuantPool | null {
    const workers: Worker[] = [];
    try {
      for (let i = 0; i < size; i++) {
        workers.push(new Worker(new URL("./quant_worker.ts", import.meta.url).href, { type: "module" }));
      }
    } catch {
      for (const w of workers) w.terminate();
      return null;
    }
    return new QuantPool(workers, 2 * size);
  }

  submit(chunk: RowChunk, done: (quantized: Uint8Array<ArrayBuffer>) => void): void {
    const id = this.nextId++;
    this.pending.set(id, done);
    // A copy of just these rows (a view would clone its whole buffer), handed over without another copy.
    this.queue.push({ ...chunk, id, raw: chunk.raw.slice() });
    this.pump();
  }

  /** Chunks submitted and not yet handed back. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Waits until at most `maxQueued` chunks wait or run, so the loader reads no further ahead than that. */
  async room(): Promise<void> {
    while (this.pending.size > this.maxQueued && !this.failure) await this.next();
    this.check();
  }

  /** Waits for every chunk submitted so far to be quantized and handed back. */
  async drain(): Promise<void> {
    while (this.pending.size && !this.failure) await this.next();
    this.check();
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    this.idle.length = 0;
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!, job = this.queue.shift()!;
      w.postMessage(job, [job.raw.buffer]);
    }
  }

  private finished(w: Worker, r: QuantResult): void {
    this.idle.push(w);
    if ("error" in r) this.fail(r.error);
    else {
      const done = this.pending.get(r.id)!;
      this.pending.delete(r.id);
      done(r.out);
    }
    this.pump();
    this.notify();
  }

  private fail(message: string): void {
    this.failure ??= message;
    this.notify();
  }

  private next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private check(): void {
    if (this.failure) {
      throw new CheckpointError(
        `quantizing the weights failed: ${this.failure}`,
        "run without --quant, or report this with the model's config.json",
      );
    }
  }
}
